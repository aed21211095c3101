// A contact sheet: frames of several clips tiled into one image, one row per clip, with a label
// drawn left of each row in a built-in 5x7 font (so a sheet needs no font file or canvas).
import type { RgbImage } from './png.js';
import { frameToImage } from './png-frames.js';
import { checkVideo, type Video } from './video.js';

// Each glyph is 7 rows of 5 pixels, two hex digits per row (bit 4 = the leftmost column).
const FONT_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.:/()=+%,?';
const FONT_ROWS = [
  '0e11111f1111111e11111e11111e0e11101010110e1e11111111111e1f10101e10101f1f10101e1010100e11101711110f1111111f1111110e04040404040e0702020202120c',
  '111214181412111010101010101f111b1515111111111119151311110e11111111110e1e11111e1010100e11111115120d1e11111e1412110f10100e01011e1f040404040404',
  '1111111111110e11111111110a041111111515150a11110a040a111111110a040404041f01020408101f0e11131519110e040c040404040e0e11010204081f1f02040201110e',
  '02060a121f02021f101e0101110e0608101e11110e1f0102040808080e11110e11110e0e11110f01020c000000000000000000001f0000000000000000001f00000000000c0c',
  '000c0c000c0c0000010204081000020408080804020804020202040800001f001f00000004041f04040018190204081303000000000c04080e110102040004',
].join('');
const GLYPH_W = 5;
const GLYPH_H = 7;
/** Ink pixels per glyph, rows of GLYPH_W. */
const GLYPHS = new Map(
  [...FONT_CHARS].map((ch, g) => {
    const ink = new Uint8Array(GLYPH_W * GLYPH_H);
    for (let y = 0; y < GLYPH_H; y++) {
      const bits = Number.parseInt(FONT_ROWS.slice(2 * (g * GLYPH_H + y), 2 * (g * GLYPH_H + y) + 2), 16);
      for (let x = 0; x < GLYPH_W; x++) ink[y * GLYPH_W + x] = (bits >> (GLYPH_W - 1 - x)) & 1;
    }
    return [ch, ink];
  }),
);

function drawText(img: RgbImage, text: string, x0: number, y0: number, scale: number, rgb: readonly [number, number, number]): void {
  let x = x0;
  for (const chRaw of text.toUpperCase()) {
    const g = GLYPHS.get(chRaw) ?? GLYPHS.get('?')!;
    for (let gy = 0; gy < GLYPH_H; gy++) {
      for (let gx = 0; gx < GLYPH_W; gx++) {
        if (!g[gy * GLYPH_W + gx]) continue;
        for (let sy = 0; sy < scale; sy++) {
          for (let sx = 0; sx < scale; sx++) {
            const px = x + gx * scale + sx;
            const py = y0 + gy * scale + sy;
            if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
            img.data.set(rgb, 3 * (py * img.width + px));
          }
        }
      }
    }
    x += (GLYPH_W + 1) * scale;
  }
}

export interface ContactSheetOptions {
  /** Pixels between tiles and around the sheet (default 4). */
  gap?: number;
  /** Background grey level 0-255 (default 32). */
  background?: number;
}

/**
 * Tile frames 0, frameStep, 2*frameStep, ... of each clip into one image, one row per clip
 * (e.g. input, continuous reconstruction, discrete reconstruction), with small gaps, and an
 * optional label drawn left of each row. Clips may differ in length and size (each cell is as
 * large as the largest frame).
 */
export function contactSheet(rows: readonly Video[], frameStep: number, labels?: readonly string[], options: ContactSheetOptions = {}): RgbImage {
  if (rows.length === 0) throw new RangeError('contactSheet: no rows');
  if (!Number.isInteger(frameStep) || frameStep < 1) throw new RangeError(`contactSheet: frameStep must be a positive integer, got ${frameStep}`);
  if (labels && labels.length !== rows.length) throw new RangeError(`contactSheet: ${labels.length} labels for ${rows.length} rows`);
  rows.forEach((r, i) => {
    checkVideo(r, `contactSheet row ${i}`);
  });
  const gap = options.gap ?? 4;
  const bg = options.background ?? 32;
  const cellH = Math.max(...rows.map((r) => r.height));
  const cellW = Math.max(...rows.map((r) => r.width));
  const cols = Math.max(...rows.map((r) => Math.ceil(r.frames / frameStep)));
  const scale = cellH >= 48 ? 2 : 1;
  const labelW = labels?.some((l) => l.length > 0) ? Math.max(...labels.map((l) => l.length)) * (GLYPH_W + 1) * scale + gap : 0;
  const width = gap + labelW + cols * (cellW + gap);
  const height = gap + rows.length * (cellH + gap);
  const img: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(bg) };
  rows.forEach((r, ri) => {
    const top = gap + ri * (cellH + gap);
    if (labels?.[ri]) drawText(img, labels[ri], gap, top + Math.max(0, Math.floor((cellH - GLYPH_H * scale) / 2)), scale, [235, 235, 235]);
    const hw = r.height * r.width;
    for (let ci = 0, t = 0; t < r.frames; ci++, t += frameStep) {
      const left = gap + labelW + ci * (cellW + gap);
      const tile = frameToImage(r.data, r.height, r.width, t * hw, r.frames * hw);
      for (let y = 0; y < r.height; y++) {
        img.data.set(tile.data.subarray(y * r.width * 3, (y + 1) * r.width * 3), 3 * ((top + y) * width + left));
      }
    }
  });
  return img;
}
