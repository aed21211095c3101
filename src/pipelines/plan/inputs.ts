// The inputs a plan stands in for. A plan needs no clip, prompt or embeddings file: where the user
// gives one, only its header is read (a clip's size and frame count, a tensor's shape) and zeros
// of that size stand in for it; the plan backend never looks at values. The zero arrays are
// allocated but never written, so the OS backs them with no memory until something writes them.
import { UserError } from '../../engine/errors.js';
import { type FileSystem, fileSystem } from '../../io/files.js';
import type { InputLimits } from '../../io/limits.js';
import { openVideoSource } from '../../io/open-video.js';
import { openSafetensors } from '../../io/safetensors.js';
import type { FrameSource, Rational, Video } from '../../io/video.js';
import type { PromptEmbeddingArrays } from '../world/prompt.js';

/** A clip's size from its header (a .y4m header, a PNG folder's first frame, one .png), checked against `limits`. */
export async function clipSize(
  path: string, fs: FileSystem = fileSystem(), limits?: InputLimits,
): Promise<{ frames: number | null; height: number; width: number; fps: Rational | null }> {
  const src = await openVideoSource(path, undefined, fs, { limits });
  try {
    return { frames: src.frameCount ?? null, height: src.height, width: src.width, fps: src.fps ?? null };
  } finally {
    await src.close();
  }
}

/** `frames` zero frames of height x width, [3, T, H, W]. */
export function zeroClip(frames: number, height: number, width: number, fps: Rational = { num: 16, den: 1 }): Video {
  return { data: new Float32Array(3 * frames * height * width), frames, height, width, fps };
}

/** `frames` zero frames, one host frame at a time (what a video reader yields). */
export function zeroFrames(frames: number, height: number, width: number, fps: Rational = { num: 24, den: 1 }): FrameSource {
  return {
    width, height, fps, frameCount: frames,
    async *frames() {
      for (let i = 0; i < frames; i++) yield new Float32Array(3 * height * width);
    },
    close: async () => {},
  };
}

/** Zeros of the shapes of a prompt-embeddings file's `prompt_embeds` / `negative_prompt_embeds` (header only). */
export async function embeddingsLike(path: string, fs: FileSystem = fileSystem()): Promise<PromptEmbeddingArrays> {
  if (!(await fs.stat(path))) throw new UserError(`embeddings: ${path} does not exist`);
  const f = await openSafetensors(path, fs);
  try {
    const zeros = (name: string) => {
      const shape = [...f.info(name).shape];
      return { data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape };
    };
    if (!f.has('prompt_embeds')) throw new UserError(`embeddings: ${path} holds no "prompt_embeds" tensor`);
    return { prompt: zeros('prompt_embeds'), negative: f.has('negative_prompt_embeds') ? zeros('negative_prompt_embeds') : null };
  } finally {
    await f.close();
  }
}

/** Zero text states [1, rows, width] for the prompt and the negative prompt. */
export function zeroEmbeddings(rows: number, width: number): PromptEmbeddingArrays {
  const t = () => ({ data: new Float32Array(rows * width), shape: [1, rows, width] });
  return { prompt: t(), negative: t() };
}
