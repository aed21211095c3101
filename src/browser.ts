// The package entry in a browser (bundlers pick it through the "browser" export condition): the
// same API as in Node. Paths are read relative to the page over HTTP range requests until the
// caller installs another file system (e.g. blobFileSystem over dropped files).
import { setFileSystem } from './io/files.js';
import { urlFileSystem } from './io/browser-files.js';

const here = (globalThis as { location?: { href: string } }).location?.href;
if (here) setFileSystem(urlFileSystem(new URL('.', here).href));

export * from './api.js';
