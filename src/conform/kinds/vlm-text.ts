// Conformance kinds of the VLM's text side and preprocessing (Qwen2.5-VL / Cosmos-Reason1):
//   vlm.tokenize          HF tokenizers encode of args.texts with the case's tokenizer.json -> ids, lengths
//   vlm.chat_template     apply_chat_template(args.messages[i], tokenize=False, add_generation_prompt,
//                         add_vision_id) with the case's template, then encode -> rendered, ids, lengths
//   vlm.image_preprocess  Qwen2VLImageProcessor on input.image / input.video + smart_resize table
// Everything comes from the case folder itself (the files case.json lists, config.json, args).
import { isFile, readJsonObject, readText } from '../../io/files.js';
import { SmartResizeError } from '../../models/vlm/config.js';
import { Qwen2VLImageProcessor, parseImageProcessorConfig, smartResize } from '../../models/vlm/preprocess.js';
import { ByteLevelBpeTokenizer } from '../../text/bpe.js';
import { type ChatMessage, ChatTemplate, type EncodedBatch, expandVisionPads, loadChatTemplate, padBatch, padIdOf } from '../../text/chat.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { registerKind, type ShapedArray, shaped } from '../registry.js';

/** A file of the case: the one case.json lists whose name ends with `suffix`, else `fallback` if present. */
async function caseFile(c: FixtureCase, suffix: string, fallback: string): Promise<string | null> {
  const listed = [...Object.keys(c.files), ...Object.values(c.files)].find((f) => f.endsWith(suffix));
  const p = c.path(listed ?? fallback);
  return (await isFile(p)) ? p : null;
}

async function loadTokenizer(c: FixtureCase): Promise<ByteLevelBpeTokenizer> {
  const p = await caseFile(c, 'tokenizer.json', 'tokenizer.json');
  if (!p) throw new CaseFormatError(`${c.dir}: ${c.kind} needs a tokenizer.json`);
  return ByteLevelBpeTokenizer.fromString(await readText(p), p);
}

/** args.pad_id, else the tokenizer's pad token (tokenizer_config.json, else Qwen2's default). */
async function padId(c: FixtureCase, tok: ByteLevelBpeTokenizer): Promise<number> {
  const a = c.args.pad_id;
  if (typeof a === 'number') return a;
  const p = await caseFile(c, 'tokenizer_config.json', 'tokenizer_config.json');
  return padIdOf(tok, p ? await readJsonObject(p, 'tokenizer_config.json') : null);
}

/** The case may state the pieces / word ids / decodings it expects: check them too. */
function checkExpectations(c: FixtureCase, tok: ByteLevelBpeTokenizer, texts: string[]): number[][] {
  const json = c.json as unknown as Record<string, unknown>;
  const wantTokens = json.expected_tokens as string[][] | undefined;
  const wantWords = json.expected_word_ids as number[][] | undefined;
  const wantDecoded = json.expected_decoded as string[] | undefined;
  const wantSkip = json.expected_decoded_skip_special as string[] | undefined;
  return texts.map((t, i) => {
    const e = tok.encodeDetailed(t, { addSpecialTokens: true });
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    if (wantTokens && !same(e.tokens, wantTokens[i])) {
      throw new Error(`${c.kind}: text ${i} tokens ${JSON.stringify(e.tokens)} differ from expected_tokens ${JSON.stringify(wantTokens[i])}`);
    }
    if (wantWords && !same(e.wordIds, wantWords[i])) {
      throw new Error(`${c.kind}: text ${i} word ids ${JSON.stringify(e.wordIds)} differ from expected_word_ids ${JSON.stringify(wantWords[i])}`);
    }
    const dec = tok.decode(e.ids);
    if (wantDecoded && dec !== wantDecoded[i]) {
      throw new Error(`${c.kind}: text ${i} decodes to ${JSON.stringify(dec)}, expected_decoded says ${JSON.stringify(wantDecoded[i])}`);
    }
    const decSkip = tok.decode(e.ids, { skipSpecialTokens: true });
    if (wantSkip && decSkip !== wantSkip[i]) {
      throw new Error(`${c.kind}: text ${i} decodes (skipping special) to ${JSON.stringify(decSkip)}, expected ${JSON.stringify(wantSkip[i])}`);
    }
    return e.ids;
  });
}

/** A padded batch as upstream returns it: ids [batch, length], lengths [batch]. */
function batchOutputs(b: EncodedBatch): Record<string, ShapedArray> {
  return { ids: shaped(b.inputIds, [b.batch, b.length]), lengths: shaped(Int32Array.from(b.lengths), [b.batch]) };
}

registerKind('vlm.tokenize', async (c) => {
  const texts = c.args.texts;
  if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
    throw new CaseFormatError(`${c.dir}: vlm.tokenize needs args.texts, a list of strings`);
  }
  const tok = await loadTokenizer(c);
  const rows = checkExpectations(c, tok, texts as string[]);
  const b = padBatch(rows, await padId(c, tok), 'right');
  return { outputs: batchOutputs(b) };
});

/** A per-conversation argument: a list (one value each) or one value for all. */
function perItem<T>(v: unknown, i: number, dflt: T): T {
  if (Array.isArray(v)) return (v[i] ?? dflt) as T;
  return (v ?? dflt) as T;
}

async function chatTemplateSource(c: FixtureCase): Promise<string> {
  const jinja = await caseFile(c, '.jinja', 'chat_template.jinja');
  if (jinja) return readText(jinja);
  const cfg = await caseFile(c, 'chat_template.json', 'chat_template.json');
  if (cfg) {
    const t = (await readJsonObject(cfg, 'chat_template.json')).chat_template;
    if (typeof t === 'string') return t;
  }
  return loadChatTemplate(c.dir);
}

registerKind('vlm.chat_template', async (c) => {
  const convs = c.args.messages;
  if (!Array.isArray(convs) || convs.some((m) => !Array.isArray(m))) {
    throw new CaseFormatError(`${c.dir}: vlm.chat_template needs args.messages, a list of conversations`);
  }
  const template = new ChatTemplate(await chatTemplateSource(c));
  const tok = await loadTokenizer(c);
  const rendered = (convs as ChatMessage[][]).map((messages, i) =>
    template.render(messages, {
      addGenerationPrompt: perItem(c.args.add_generation_prompt, i, false),
      addVisionId: perItem(c.args.add_vision_id, i, false),
    }));
  // The processor's pad expansion, when the case gives grids (none in the public case).
  const grids = (k: string) => (Array.isArray(c.args[k]) ? (c.args[k] as number[][]) : undefined);
  const texts = grids('image_grid_thw') || grids('video_grid_thw')
    ? expandVisionPads(rendered, {
      imageGridThw: grids('image_grid_thw'), videoGridThw: grids('video_grid_thw'),
      mergeSize: typeof c.args.merge_size === 'number' ? c.args.merge_size : 2,
    })
    : rendered;
  const rows = checkExpectations(c, tok, texts);
  const b = padBatch(rows, await padId(c, tok), 'right');
  return { outputs: { rendered, ...batchOutputs(b) } };
});

registerKind('vlm.image_preprocess', async (c) => {
  // config.json is the preprocessor_config; args repeat (and may override) its settings
  const cfg = parseImageProcessorConfig({ ...(c.config ?? {}), ...c.args });
  const proc = new Qwen2VLImageProcessor(cfg);
  const outputs: Record<string, ShapedArray> = {};
  const u8 = (raw: ArrayLike<number>) => Uint8Array.from(raw as ArrayLike<number>);
  if (c.hasInput('image')) {
    const im = await c.input('image');
    const [h, w, ch] = im.shape;
    if (im.shape.length !== 3 || ch !== 3) throw new CaseFormatError(`${c.dir}: input.image must be (H, W, 3), got ${JSON.stringify(im.shape)}`);
    const b = proc.preprocessImages([{ data: u8(im.raw), height: h, width: w }]);
    outputs.pixel_values = shaped(b.pixelValues, b.shape);
    outputs.image_grid_thw = shaped(Int32Array.from(b.gridThw.flat()), [b.gridThw.length, 3]);
  }
  if (c.hasInput('video')) {
    const v = await c.input('video');
    const [t, h, w, ch] = v.shape;
    if (v.shape.length !== 4 || ch !== 3) throw new CaseFormatError(`${c.dir}: input.video must be (T, H, W, 3), got ${JSON.stringify(v.shape)}`);
    const b = proc.preprocessVideos([{ data: u8(v.raw), frames: t, height: h, width: w }]);
    outputs.pixel_values_videos = shaped(b.pixelValues, b.shape);
    outputs.video_grid_thw = shaped(Int32Array.from(b.gridThw.flat()), [b.gridThw.length, 3]);
  }
  if (c.hasInput('smart_resize_query')) {
    // rows (height, width, min_pixels, max_pixels) -> (h, w), or (-1, -1) where upstream raises
    const q = await c.input('smart_resize_query');
    const n = q.shape[0];
    const out = new Int32Array(2 * n);
    const factor = cfg.patchSize * cfg.mergeSize;
    for (let i = 0; i < n; i++) {
      const [h, w, minP, maxP] = Array.from(q.raw.subarray(4 * i, 4 * i + 4));
      try {
        const [rh, rw] = smartResize(h, w, factor, minP, maxP);
        out[2 * i] = rh;
        out[2 * i + 1] = rw;
      } catch (e) {
        if (!(e instanceof SmartResizeError)) throw e;
        out[2 * i] = -1;
        out[2 * i + 1] = -1;
      }
    }
    outputs.smart_resize = shaped(out, [n, 2]);
  }
  return { outputs };
});
