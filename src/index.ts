// The package entry in Node: the whole public API (api.ts), reading and writing through Node's
// file system. `import { loadRelease, selectBackend, tokenize, capture } from 'cosmos-ts'`.
import { setFileSystem } from './io/files.js';
import { nodeFileSystem } from './io/node-files.js';

setFileSystem(nodeFileSystem);

export * from './api.js';
export { nodeFileSystem };
