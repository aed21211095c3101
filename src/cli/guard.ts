// `cosmos-ts guard`: the guardrail stages alone, on a prompt or on a clip, each stage's verdict
// printed with its scores; exit 0 when safe, 3 when a stage refuses (as the generating commands).
import { readVideo, writeVideo } from '../io/open-video.js';
import { DEFAULT_FPS } from '../io/video.js';
import { GuardrailBlockedError, type Verdict, openGuardrails } from '../pipelines/guardrails.js';
import { FPS_FLAG, fpsFlag } from './clip-flags.js';
import { BACKEND_FLAG, UsageError, commandBackend, defineCommand } from './command.js';
import { GUARDRAILS_FLAG } from './guardrail-flags.js';
import { LIMIT_FLAGS, limitsOf } from './limit-flags.js';

function verdictLine(v: Verdict): string {
  const scores = v.scores ? Object.entries(v.scores).map(([k, s]) => `${k}=${Number.isInteger(s) ? s : s.toFixed(4)}`).join(' ') : '';
  return `${v.stage}: ${v.safe ? 'safe' : 'UNSAFE'}: ${v.message}${scores ? ` (${scores})` : ''}`;
}

export const command = defineCommand({
  name: 'guard',
  summary: 'run the guardrail stages alone on a prompt or a clip (exit 3 when refused)',
  description:
    'Runs the Cosmos guardrails of a Cosmos-1.0-Guardrail folder without generating anything: a prompt goes through\n' +
    'the blocklist and Aegis (the first refusal stops), a clip through the video content safety filter (every frame)\n' +
    'and the face blur (with --out, the blurred clip is written). Prints each stage\'s verdict and scores; exit status\n' +
    '0 when safe, 3 when refused.',
  flags: {
    guardrails: { ...GUARDRAILS_FLAG, required: true, help: 'the Cosmos-1.0-Guardrail folder (blocklist/, aegis/, video_content_safety_filter/, face_blur_filter/)' },
    prompt: { type: 'string', placeholder: '"..."', help: 'a prompt to check (blocklist, then Aegis)' },
    video: { type: 'string', path: 'input', placeholder: '<clip.y4m | PNG folder | image.png>', conflicts: ['prompt'], help: 'a clip to check (safety filter on every frame, then face blur)' },
    out: { type: 'string', path: 'output', placeholder: '<out.y4m | folder>', help: 'with --video: write the clip with its faces blurred (nothing is written when refused)' },
    fps: { ...FPS_FLAG, help: 'frame rate for PNG input (default 24)' },
    backend: BACKEND_FLAG,
    json: { type: 'boolean', help: 'print the verdicts as one JSON object' },
    ...LIMIT_FLAGS,
  },
  check(f) {
    if (f.prompt === undefined && f.video === undefined) throw new UsageError('--prompt: missing (give --prompt or --video)');
    if (f.out !== undefined && f.video === undefined) throw new UsageError('--out: writes the blurred --video; give --video');
  },
  async run(f, _positionals, ctx) {
    const video = f.video === undefined ? null : await readVideo(f.video, fpsFlag(f.fps) ?? DEFAULT_FPS, undefined, { limits: limitsOf(f) });
    const backend = await commandBackend(f.backend, ctx);
    const guardrails = await openGuardrails(f.guardrails, backend, { text: f.prompt !== undefined, video: video !== null });
    try {
      let safe: boolean;
      let verdicts: Verdict[];
      if (video) {
        // a clip read from a file: its own bytes (rounded), not the decode's truncation
        const r = await guardrails.checkVideo(video, { signal: ctx.signal, quantize: 'round' });
        ({ safe, verdicts } = r);
        if (r.video && f.out !== undefined) await writeVideo(f.out, r.video, { fps: video.fps ?? DEFAULT_FPS });
      } else ({ safe, verdicts } = await guardrails.checkPrompt(f.prompt ?? '', { signal: ctx.signal }));
      if (f.json) {
        ctx.out(JSON.stringify({ command: 'guard', guardrails: f.guardrails, safe, verdicts, out: safe && f.out !== undefined ? f.out : null }));
      } else {
        for (const v of verdicts) ctx.out(verdictLine(v));
        if (safe && f.out !== undefined) ctx.out(`-> ${f.out}`);
      }
      if (!safe) throw new GuardrailBlockedError(verdicts[verdicts.length - 1]);
      return 0;
    } finally {
      guardrails.dispose();
    }
  },
});
