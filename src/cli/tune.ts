// `cosmos-ts tune`: time the matmul's candidate tiles on this machine's WebGPU adapter and write the
// table of the fastest (src/engine/autotune.ts), for `--tuning FILE` / COSMOS_TUNING to use later.
import { autotune } from '../engine/autotune.js';
import { choiceLabel, MATMUL_CLASSES } from '../engine/tuning.js';
import { writeFileAtomic } from '../io/files.js';
import { commandBackend, defineCommand } from './command.js';

export const command = defineCommand({
  name: 'tune',
  summary: 'time the matmul tiles on this GPU and write a tuning table for --tuning',
  description: `Times the candidate matmul entries and tile / workgroup sizes of each shape class (GEMV,
small, skinny, tall-K, square) on the WebGPU adapter, after checking each one's result against the
default's (a wrong candidate is discarded, however fast), and writes a JSON table of the fastest,
keyed by the adapter's name. Give it to any command with --tuning FILE (or COSMOS_TUNING=FILE); on
another adapter the table is ignored with a warning. Kernel times come from timestamp queries where
the adapter has them, else from synced wall time. On a software adapter the table is written but not
used (the matmul reads its operands through textures there).`,
  flags: {
    out: { type: 'string', path: 'output', placeholder: '<file>', help: 'write the table here (atomically); default: print it on stdout' },
    quick: { type: 'boolean', help: 'smaller problems and fewer runs' },
  },
  async run(f, _positionals, ctx) {
    const be = await commandBackend('webgpu', ctx);
    ctx.err(`tune: ${be.adapter}${be.software ? ' [software adapter: the table will not be used here]' : ''}`);
    const table = await autotune(be, {
      quick: f.quick,
      signal: ctx.signal,
      onEvent: (e) => ctx.err(`  ${e.class.padEnd(6)} ${e.candidate.padEnd(18)} ${e.seconds === null ? e.note : `${(e.seconds * 1000).toFixed(3)} ms`}`),
    });
    ctx.err(`tune: ${MATMUL_CLASSES.map((c) => `${c} ${choiceLabel(table.matmul[c])}`).join(', ')}`);
    const text = `${JSON.stringify(table, null, 2)}\n`;
    if (f.out === undefined) ctx.out(text.trimEnd());
    else {
      await writeFileAtomic(f.out, new TextEncoder().encode(text));
      ctx.err(`tune: wrote ${f.out}`);
    }
  },
});
