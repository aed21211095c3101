// T5's conventions on top of its SentencePiece model, as transformers' T5 tokenizer applies them:
// </s> appended, rows truncated (keeping </s>) and right-padded with <pad>, and the sentinel
// tokens <extra_id_N> written in a text mapped to the ids above the pieces.
import { type FileSystem, fileSystem } from '../io/files.js';
import { SentencePieceModelError } from './errors.js';
import { SentencePieceProcessor } from './sentencepiece.js';

export interface T5EncodeOptions {
  /** pad (and truncate) every row to this many ids; default: the longest row */
  maxLength?: number;
  /** cut rows longer than maxLength, keeping </s> last (default true; false throws instead) */
  truncation?: boolean;
  /** pad to maxLength (default true when maxLength is given) */
  padding?: boolean;
  /** append </s> (default true) */
  addEos?: boolean;
}

export interface T5Batch {
  /** [batch, length] row-major, right-padded with <pad> */
  ids: Int32Array;
  /** 1 = token, 0 = padding */
  mask: Int32Array;
  /** ids per row, </s> included */
  lengths: number[];
  /** ids each row lost to truncation (0 when it fit), so callers can say so */
  cut: number[];
  shape: [number, number];
}

/**
 * The transformers T5 tokenizer on top of SentencePiece: ids = sp.encode(text) + [</s>],
 * truncated to maxLength (keeping </s>), right-padded with <pad> = 0. The 100 sentinel tokens
 * <extra_id_0..99> written in a text map to vocab_size - 1 - N, as T5's added tokens do.
 */
export class T5Tokenizer {
  readonly eosId: number;
  readonly padId: number;
  private readonly sentinel = /<extra_id_(\d+)>/g;

  constructor(readonly sp: SentencePieceProcessor, readonly extraIds = 100) {
    if (sp.eosId < 0) throw new SentencePieceModelError('T5 tokenizer: the model has no </s> control piece');
    this.eosId = sp.eosId;
    this.padId = Math.max(sp.padId, 0);
  }

  static async load(path: string, extraIds = 100, fs: FileSystem = fileSystem()): Promise<T5Tokenizer> {
    return new T5Tokenizer(await SentencePieceProcessor.load(path, fs), extraIds);
  }

  /** From the bytes of a spiece.model (for callers that already hold them). */
  static fromBytes(bytes: Uint8Array, extraIds = 100): T5Tokenizer {
    return new T5Tokenizer(SentencePieceProcessor.fromBytes(bytes), extraIds);
  }

  /** ids used by sentinels and pieces together */
  get vocabSize(): number {
    return this.sp.vocabSize + this.extraIds;
  }

  /** ids of one text, </s> appended unless addEos is false; no padding or truncation. */
  encode(text: string, addEos = true): number[] {
    const ids: number[] = [];
    let last = 0;
    for (const m of text.matchAll(this.sentinel)) {
      const n = Number(m[1]);
      if (n >= this.extraIds) continue;
      ids.push(...this.sp.encode(text.slice(last, m.index)));
      ids.push(this.sp.vocabSize + this.extraIds - 1 - n);
      last = m.index + m[0].length;
    }
    ids.push(...this.sp.encode(text.slice(last)));
    if (addEos) ids.push(this.eosId);
    return ids;
  }

  encodeBatch(texts: readonly string[], opts: T5EncodeOptions = {}): T5Batch {
    const { maxLength, truncation = true, addEos = true } = opts;
    if (maxLength !== undefined && !(Number.isInteger(maxLength) && maxLength >= 1)) {
      throw new RangeError(`T5 tokenizer: maxLength must be a positive integer, got ${maxLength}`);
    }
    const cut: number[] = [];
    const rows = texts.map((t, i) => {
      let ids = this.encode(t, addEos);
      cut.push(0);
      if (maxLength !== undefined && ids.length > maxLength) {
        if (!truncation) throw new RangeError(`T5 tokenizer: text ${i} has ${ids.length} ids, more than maxLength ${maxLength}`);
        cut[i] = ids.length - maxLength;
        ids = addEos ? [...ids.slice(0, maxLength - 1), this.eosId] : ids.slice(0, maxLength);
      }
      return ids;
    });
    const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
    const padding = opts.padding ?? maxLength !== undefined;
    const L = padding && maxLength !== undefined ? maxLength : longest;
    const ids = new Int32Array(rows.length * L).fill(this.padId);
    const mask = new Int32Array(rows.length * L);
    rows.forEach((r, i) => {
      ids.set(r, i * L);
      mask.fill(1, i * L, i * L + r.length);
    });
    return { ids, mask, lengths: rows.map((r) => r.length), cut, shape: [rows.length, L] };
  }

  decode(ids: readonly number[], skipSpecial = true): string {
    const out: string[] = [];
    let run: number[] = [];
    const flush = () => {
      if (run.length) out.push(this.sp.decode(run));
      run = [];
    };
    for (const id of ids) {
      if (id >= this.sp.vocabSize && id < this.vocabSize) {
        flush();
        if (!skipSpecial) out.push(`<extra_id_${this.vocabSize - 1 - id}>`);
      } else if (skipSpecial && (id === this.padId || id === this.eosId)) continue;
      else run.push(id);
    }
    flush();
    return out.join(skipSpecial ? '' : ' ');
  }
}
