// Typed errors for checkpoint I/O. Every failure caused by the *contents* of a file (or a missing
// file) is a SafetensorsError, so callers such as the CLI can report it as one clean line and treat
// anything else as a bug.
import { UserError } from '../engine/errors.js';

export interface SafetensorsErrorContext {
  /** The file (or directory / index) the problem is in, as the caller spelled it. */
  file: string;
  /** The tensor concerned, when there is one. */
  tensor?: string;
}

export class SafetensorsError extends UserError {
  readonly file: string;
  readonly tensor: string | undefined;

  constructor(ctx: SafetensorsErrorContext, problem: string) {
    const where = ctx.tensor === undefined ? ctx.file : `${ctx.file}: tensor ${JSON.stringify(ctx.tensor)}`;
    super(`${where}: ${problem}`);
    this.name = new.target.name;
    this.file = ctx.file;
    this.tensor = ctx.tensor;
  }
}

/** The file could not be opened or read at all (missing, a directory, permissions). */
export class FileAccessError extends SafetensorsError {}
/** Shorter than the 8-byte header-length prefix. */
export class FileTooShortError extends SafetensorsError {}
/** Header length is 0, over the limit, or runs past the end of the file. */
export class HeaderLengthError extends SafetensorsError {}
/** Header is not UTF-8, not JSON, not an object, or has a malformed __metadata__. */
export class HeaderFormatError extends SafetensorsError {}
/** A tensor entry lacks dtype/shape/data_offsets or has values of the wrong type. */
export class EntryFormatError extends SafetensorsError {}
/** A dtype string that is not part of the safetensors format. */
export class UnknownDtypeError extends SafetensorsError {}
/** A valid safetensors dtype that the engine cannot load (e.g. F8_E4M3). */
export class UnsupportedDtypeError extends SafetensorsError {}
/** data_offsets end < start, or byte length does not match shape x itemsize. */
export class TensorSizeError extends SafetensorsError {}
/** A tensor's bytes lie beyond the end of the file (typically a truncated download). */
export class OffsetsPastEndError extends SafetensorsError {}
/** Two tensors share bytes. */
export class OverlapError extends SafetensorsError {}
/** Bytes of the data section that no tensor indexes (the format forbids holes). */
export class GapError extends SafetensorsError {}
/** A stored value cannot be represented in the engine dtype (e.g. I64 beyond int32). */
export class ValueRangeError extends SafetensorsError {}
/** A name that the file or checkpoint does not contain. */
export class TensorNotFoundError extends SafetensorsError {}
/** Sharded checkpoint problems: bad index, missing shards, ambiguous directory, duplicates. */
export class CheckpointError extends SafetensorsError {}
/** The index weight_map and the shards' contents disagree. */
export class IndexMismatchError extends CheckpointError {}
/** Invalid input to the writer. */
export class WriteError extends SafetensorsError {}
