// Every test file runs in Node: the library reads and writes through Node's file system.
import { setFileSystem } from '../src/io/files.js';
import { nodeFileSystem } from '../src/io/node-files.js';

setFileSystem(nodeFileSystem);
