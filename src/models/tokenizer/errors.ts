// Typed errors of the tokenizer models: a bad argument (shape, frame count, channel count,
// token id) names the argument, what was expected and what was given; a config the networks
// cannot be built from names the field.
import { shapeStr } from '../../engine/tensor.js';
import { UserError } from '../../engine/errors.js';

export class TokenizerInputError extends UserError {
  override name = 'TokenizerInputError';
  constructor(
    /** the argument at fault, e.g. 'video', 'latent', 'indices', 'chunks[2]' */
    readonly argument: string,
    /** what the model needs, in words */
    readonly expected: string,
    /** what it got, in words (usually a shape) */
    readonly got: string,
  ) {
    super(`${argument}: expected ${expected}, got ${got}`);
  }
}

export class TokenizerConfigError extends UserError {
  override name = 'TokenizerConfigError';
  constructor(
    /** the config field at fault, or '<path>' / '<root>' / '<release>': the message then names what it is about */
    readonly field: string,
    message: string,
  ) {
    super(field.startsWith('<') ? message : `tokenizer config ${field}: ${message}`);
  }
}

export function gotShape(shape: readonly number[]): string {
  return `shape ${shapeStr(shape)}`;
}
