// The one error of the PyTorch checkpoint reader and writer. Everything a file can do wrong (a
// foreign or truncated file, a refused pickle instruction or global, a size that does not fit the
// file) is a TorchFormatError: one line, `<file>: <what was refused, and what was expected>`.
import { FileError } from '../files.js';

export class TorchFormatError extends FileError {}

/** Raised by the pickle interpreter when it needs bytes past the end of what it was given. */
export class PickleTruncated extends Error {
  constructor(
    /** offset (in the pickle) one past the last byte it needed */
    readonly needEnd: number,
    /** offset of the opcode being read */
    readonly at: number,
  ) {
    super(`pickle ends inside the opcode at byte ${at} (it needs bytes up to ${needEnd})`);
  }
}
