// Clips given as data: a Video in memory read as a FrameSource (what the streaming encoders and
// the frame samplers take), and the last frames of a FrameSource kept as they stream past.
import { type FrameSource, type Video, getFrame } from '../io/video.js';

export function isFrameSource(x: FrameSource | Video): x is FrameSource {
  return typeof (x as FrameSource).frames === 'function';
}

/** A clip in memory as a FrameSource (each frame copied out as it is asked for). */
export function videoSource(v: Video): FrameSource {
  return {
    width: v.width,
    height: v.height,
    fps: v.fps,
    frameCount: v.frames,
    async *frames() {
      for (let t = 0; t < v.frames; t++) yield getFrame(v, t);
    },
    close: async () => {},
  };
}

/** Read a source to its end keeping only its last `n` frames (bounded memory); and the count. */
export async function lastFrames(source: FrameSource, n: number): Promise<{ frames: Float32Array[]; total: number }> {
  const frames: Float32Array[] = [];
  let total = 0;
  for await (const f of source.frames()) {
    frames.push(f);
    total++;
    if (frames.length > n) frames.shift();
  }
  return { frames, total };
}
