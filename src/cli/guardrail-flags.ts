// --guardrails of the generating commands: the released Cosmos-1.0-Guardrail folder, opened after
// the backend (its stages run there) and before any model loads. Without it the command says once
// that it runs unguarded.
import type { Backend } from '../engine/backend.js';
import { type Guardrails, openGuardrails } from '../pipelines/guardrails.js';
import type { CommandContext } from './command.js';

export const GUARDRAILS_FLAG = {
  type: 'string', path: 'input', placeholder: '<folder>',
  help: 'the Cosmos-1.0-Guardrail folder (blocklist/, aegis/, video_content_safety_filter/, face_blur_filter/): the prompt is checked before generating, the clip before writing (faces blurred); a refusal exits 3',
} as const;

export const UNGUARDED_NOTE = 'note: running without guardrails (--guardrails <Cosmos-1.0-Guardrail folder> adds them)';

/** The command's guardrails (text stages too unless `text` is false), or the note and undefined. */
export async function commandGuardrails(folder: string | undefined, backend: Backend, ctx: CommandContext, text = true): Promise<Guardrails | undefined> {
  if (folder === undefined) {
    ctx.err(UNGUARDED_NOTE);
    return undefined;
  }
  const g = await openGuardrails(folder, backend, { text });
  ctx.err(`guardrails ${folder}: ${[...g.textGuards.map((s) => s.name), ...[g.videoGuard, g.faceGuard].flatMap((s) => (s ? [s.name] : []))].join(', ')}`);
  return g;
}
