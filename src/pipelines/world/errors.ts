// The world pipelines' own user errors: an option value that cannot work with the model (it names
// the option as the library spells it), and a model folder that lacks a part or whose parts do
// not fit together (it names the path).
import { UserError } from '../../engine/errors.js';

/** A bad option value (frame count, size, embeddings width, ...): names the option. */
export class PipelineInputError extends UserError {
  constructor(
    /** the option at fault, e.g. 'frames' */
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
  }
}

/** A model folder that lacks a subfolder / file, or whose parts do not fit together. */
export class PipelineFilesError extends UserError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}
