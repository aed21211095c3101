// Conformance kinds of the T5 text encoder and its SentencePiece tokenizer:
//   t5.encoder   transformers T5EncoderModel(input_ids, attention_mask) -> last_hidden_state
//   t5.tokenize  SentencePiece encode of args.texts with the case's spiece.model -> ids, lengths
// Everything comes from the case folder itself (config.json + model.safetensors, or the
// tokenizer file case.json names).
import { capture } from '../../engine/module.js';
import { T5EncoderFamily } from '../../models/t5/encoder.js';
import { SentencePieceProcessor } from '../../text/sentencepiece.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { registerKind, shaped } from '../registry.js';

registerKind('t5.encoder', async (c, backend) => {
  const model = await c.module(T5EncoderFamily, backend);
  const ids = await c.input('input_ids');
  const mask = c.hasInput('attention_mask') ? await c.input('attention_mask') : null;
  try {
    const { result, taps } = await capture(c.tapNames, () =>
      model.forward({ data: ids.raw, shape: ids.shape }, mask ? { data: mask.raw, shape: mask.shape } : null));
    return { outputs: { last_hidden_state: result }, taps };
  } finally {
    // the outputs and taps hold their own references; the weights go now
    model.dispose();
  }
});

/** The tokenizer file a t5.tokenize case names (case.json `files`), spiece.model by default. */
function tokenizerFile(c: FixtureCase): string {
  const files = Object.values(c.files);
  const model = files.find((f) => f.endsWith('.model')) ?? 'spiece.model';
  return c.path(model);
}

registerKind('t5.tokenize', async (c) => {
  const sp = await SentencePieceProcessor.load(tokenizerFile(c), c.fs);
  const texts = c.args.texts;
  if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
    throw new CaseFormatError(`${c.dir}: t5.tokenize needs args.texts, a list of strings`);
  }
  const padId = typeof c.args.pad_id === 'number' ? c.args.pad_id : Math.max(sp.padId, 0);
  const rows = (texts as string[]).map((t) => sp.encodePieces(t));
  // The case may also state the pieces and the decoded text it expects: check them too, since
  // the runner only compares the tensors.
  const json = c.json as unknown as Record<string, unknown>;
  const wantPieces = json.expected_pieces as string[][] | undefined;
  const wantDecoded = json.expected_decoded as string[] | undefined;
  rows.forEach((r, i) => {
    const pieces = r.map((p) => p.piece);
    if (wantPieces && JSON.stringify(pieces) !== JSON.stringify(wantPieces[i])) {
      throw new Error(`t5.tokenize: text ${i} pieces ${JSON.stringify(pieces)} differ from expected_pieces ${JSON.stringify(wantPieces[i])}`);
    }
    const decoded = sp.decode(r.map((p) => p.id));
    if (wantDecoded && decoded !== wantDecoded[i]) {
      throw new Error(`t5.tokenize: text ${i} decodes to ${JSON.stringify(decoded)}, expected_decoded says ${JSON.stringify(wantDecoded[i])}`);
    }
  });
  const L = rows.reduce((m, r) => Math.max(m, r.length), 0);
  const ids = new Int32Array(rows.length * L).fill(padId);
  rows.forEach((r, i) => { ids.set(r.map((p) => p.id), i * L); });
  return { outputs: { ids: shaped(ids, [rows.length, L]), lengths: shaped(Int32Array.from(rows, (r) => r.length), [rows.length]) } };
});
