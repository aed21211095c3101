// The errors of the text tokenizers: a model or template file that cannot be used as given.
import { UserError } from '../engine/errors.js';

/** A spiece.model that is malformed, or asks for something this SentencePiece does not run. */
export class SentencePieceModelError extends UserError {}

/** A tokenizer.json that is malformed, or not a byte-level BPE this tokenizer runs. */
export class BpeTokenizerError extends UserError {}

/** A chat template that is missing, does not parse or fails to render; a pad expansion that does not fit. */
export class ChatTemplateError extends UserError {}
