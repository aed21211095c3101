// Spawned by faults-signals.test.ts: a process with the CLI's signal handling and outputs half
// written (a file over an existing one, a PNG-frame folder), that waits to be interrupted. It
// prints the temporary paths, one JSON line, once they exist.
import { installSignals } from '../../src/cli/signals.js';
import { nodeFileSystem, temporaryOutputs } from '../../src/io/node-files.js';
import { PNG_FRAME_FOLDER } from '../../src/io/png-frames.js';

const [file, folder] = process.argv.slice(2);
installSignals(new AbortController());
const out = await nodeFileSystem.create(file);
await out.write(new TextEncoder().encode('half of a new file'));
const frames = await nodeFileSystem.createFolder(folder, PNG_FRAME_FOLDER);
const frame = await nodeFileSystem.create(`${frames.path}/frame_000000.png`);
await frame.write(new Uint8Array(16));
process.stdout.write(`${JSON.stringify(temporaryOutputs())}\n`);
// busy in short slices, as a pipeline is between its steps
setInterval(() => {
  const t = performance.now();
  while (performance.now() - t < 50) {}
}, 1);
