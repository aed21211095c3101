// The model resolution a raw clip is resized to before Transfer2.5 reads it (spec control_maps.md
// "Where they sit"): the aspect ratio nearest the clip's (by squared difference of W / H, the first
// of the table on a tie, as numpy's argmin) picks a [W, H] of upstream's VIDEO_RES_SIZE_INFO row.
// A "WxH" resolution names the size outright (small models, tests).

export const ASPECTS = ['16,9', '4,3', '1,1', '3,4', '9,16'] as const;
export type Aspect = (typeof ASPECTS)[number];
const RATIOS: readonly number[] = [16 / 9, 4 / 3, 1, 3 / 4, 9 / 16];

/** upstream VIDEO_RES_SIZE_INFO (cosmos_transfer2/_src/predict2/datasets/utils.py): [W, H] per aspect. */
export const VIDEO_RES_SIZE_INFO: Readonly<Record<string, Readonly<Record<Aspect, readonly [number, number]>>>> = {
  '1080': { '1,1': [1024, 1024], '4,3': [1440, 1056], '3,4': [1056, 1440], '16,9': [1920, 1056], '9,16': [1056, 1920] },
  '1024': { '1,1': [1024, 1024], '4,3': [1280, 1024], '3,4': [1024, 1280], '16,9': [1280, 768], '9,16': [768, 1280] },
  '720': { '1,1': [960, 960], '4,3': [960, 704], '3,4': [704, 960], '16,9': [1280, 704], '9,16': [704, 1280] },
  '512': { '1,1': [512, 512], '4,3': [640, 512], '3,4': [512, 640], '16,9': [640, 384], '9,16': [384, 640] },
  '480': { '1,1': [480, 480], '4,3': [640, 480], '3,4': [480, 640], '16,9': [768, 432], '9,16': [432, 768] },
  '480p': { '1,1': [640, 640], '4,3': [640, 480], '3,4': [480, 640], '16,9': [832, 480], '9,16': [480, 832] },
  '720p': { '1,1': [960, 960], '4,3': [960, 720], '3,4': [720, 960], '16,9': [1280, 720], '9,16': [720, 1280] },
  '256': { '1,1': [256, 256], '4,3': [320, 256], '3,4': [256, 320], '16,9': [320, 192], '9,16': [192, 320] },
};

/** Transfer2.5's inference default. */
export const DEFAULT_RESOLUTION = '720';

/** The table's aspect nearest a W x H frame's. */
export function detectAspect(width: number, height: number): Aspect {
  const r = width / height;
  let best = 0;
  for (let i = 1; i < RATIOS.length; i++) if ((RATIOS[i] - r) ** 2 < (RATIOS[best] - r) ** 2) best = i;
  return ASPECTS[best];
}

const EXPLICIT = /^\s*(\d+)\s*[xX]\s*(\d+)\s*$/;

/** What is wrong with a resolution string, or null. */
export function resolutionProblem(resolution: string): string | null {
  if (Object.hasOwn(VIDEO_RES_SIZE_INFO, resolution)) return null;
  const m = EXPLICIT.exec(resolution);
  if (m && Number(m[1]) >= 1 && Number(m[2]) >= 1 && Number(m[1]) * Number(m[2]) <= 2 ** 31) return null;
  return `unknown resolution ${JSON.stringify(resolution)} (expected one of ${Object.keys(VIDEO_RES_SIZE_INFO).join(', ')}, or WxH such as 1280x704)`;
}

/** [W, H] a W x H clip is resized to at `resolution` (a table key, or "WxH"). */
export function modelSize(resolution: string, width: number, height: number): [number, number] {
  const m = EXPLICIT.exec(resolution);
  if (m && !Object.hasOwn(VIDEO_RES_SIZE_INFO, resolution)) return [Number(m[1]), Number(m[2])];
  const row = Object.hasOwn(VIDEO_RES_SIZE_INFO, resolution) ? VIDEO_RES_SIZE_INFO[resolution] : null;
  if (!row) throw new RangeError(resolutionProblem(resolution) ?? resolution);
  const [w, h] = row[detectAspect(width, height)];
  return [w, h];
}
