// Drawing clips and tensors on canvases: RGB frames in [-1, 1], and scalar planes through a
// diverging colour map (blue < 0 < red, white at zero) scaled to the largest magnitude.

/** A w x h canvas shown `zoom` times larger (1: as is). */
function sizedCanvas(w: number, h: number, zoom = 1): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  if (zoom !== 1) {
    c.style.width = `${w * zoom}px`;
    c.style.height = `${h * zoom}px`;
  }
  return c;
}

/** Frame t of a [3, T, H, W] clip in [-1, 1] as a canvas (scaled up by `zoom`). */
export function frameCanvas(data: Float32Array, frames: number, h: number, w: number, t: number, zoom = 3): HTMLCanvasElement {
  const c = sizedCanvas(w, h, zoom);
  const img = new ImageData(w, h);
  const hw = h * w;
  for (let i = 0; i < hw; i++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = data[(ch * frames + t) * hw + i];
      img.data[i * 4 + ch] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
    }
    img.data[i * 4 + 3] = 255;
  }
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}

/** An H x W plane (`values` from `offset`) as a heat map, scaled so `scale` maps to full colour; NaN is green. */
export function heatCanvas(values: ArrayLike<number>, offset: number, h: number, w: number, scale: number): HTMLCanvasElement {
  const c = sizedCanvas(w, h);
  const img = new ImageData(w, h);
  const s = scale > 0 ? 1 / scale : 0;
  for (let i = 0; i < h * w; i++) {
    const v = values[offset + i];
    let r: number;
    let g: number;
    let b: number;
    if (Number.isNaN(v)) [r, g, b] = [0, 200, 0];
    else {
      const x = Math.max(-1, Math.min(1, v * s));
      // white at zero, towards red for positive and blue for negative
      const k = Math.round(255 * (1 - Math.abs(x)));
      [r, g, b] = x >= 0 ? [255, k, k] : [k, k, 255];
    }
    img.data.set([r, g, b, 255], i * 4);
  }
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}

/** An H x W plane of integer ids (token ids) as distinct colours: neighbouring ids get far-apart hues. */
export function idCanvas(ids: Int32Array, offset: number, h: number, w: number, zoom = 8): HTMLCanvasElement {
  const c = sizedCanvas(w, h, zoom);
  const img = new ImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    // golden-ratio hue steps; lightness varies with the id's higher bits so equal hues still differ
    const id = ids[offset + i];
    const hue = ((id * 0.618033988749895) % 1) * 6;
    const light = 0.45 + 0.3 * (((id >> 4) % 4) / 3);
    const f = (k: number) => {
      const x = (k + hue) % 6;
      const t = Math.max(0, Math.min(1, Math.min(x, 4 - x)));
      return Math.round(255 * (light + (t - 0.5) * 0.8 * Math.min(light, 1 - light) * 2));
    };
    img.data.set([f(5), f(3), f(1), 255], i * 4);
  }
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}
