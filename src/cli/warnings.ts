// A pipeline's warnings (PipelineWarning: the option it is about and what happened) as the CLI
// prints them: one `warning: <flag>: <message>` line on stderr, naming the flag the user typed.
import type { PipelineWarning } from '../pipelines/progress.js';
import type { CommandContext } from './command.js';

/** The flags of the pipeline options that warnings name. */
const FLAG_OF: Readonly<Record<string, string>> = { prompt: '--prompt', negativePrompt: '--negative-prompt' };

/** Print warnings on stderr; `names` overrides what an option is called (e.g. a spec field the value came from). */
export function printWarnings(ctx: CommandContext, names: Readonly<Record<string, string>> = {}): (w: PipelineWarning) => void {
  return (w) => ctx.err(`warning: ${names[w.option] ?? FLAG_OF[w.option] ?? w.option}: ${w.message}`);
}
