// The BPE model of a byte-level tokenizer.json: the vocabulary, and the ordered merges (rank =
// position in `merges`, spelled "A B" or ["A", "B"]). A word's byte symbols are merged as
// `tokenizers`' Word::merge_all does: repeatedly the adjacent pair of lowest rank, leftmost among
// equals, through a priority queue whose stale entries are skipped.
import { BpeTokenizerError } from './errors.js';

/** Binary min-heap of (rank, pos, newId), ordered by rank then pos. */
class MergeQueue {
  private rank: number[] = [];
  private pos: number[] = [];
  private nid: number[] = [];
  get size(): number {
    return this.rank.length;
  }
  private less(a: number, b: number): boolean {
    return this.rank[a] < this.rank[b] || (this.rank[a] === this.rank[b] && this.pos[a] < this.pos[b]);
  }
  private swap(a: number, b: number): void {
    [this.rank[a], this.rank[b]] = [this.rank[b], this.rank[a]];
    [this.pos[a], this.pos[b]] = [this.pos[b], this.pos[a]];
    [this.nid[a], this.nid[b]] = [this.nid[b], this.nid[a]];
  }
  push(rank: number, pos: number, newId: number): void {
    this.rank.push(rank);
    this.pos.push(pos);
    this.nid.push(newId);
    let i = this.rank.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number, number] {
    const top: [number, number, number] = [this.rank[0], this.pos[0], this.nid[0]];
    const last = this.rank.length - 1;
    this.swap(0, last);
    this.rank.pop();
    this.pos.pop();
    this.nid.pop();
    let i = 0;
    const n = this.rank.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}

// ------------------------------------------------------------------ the tokenizer

/** The two parts of a merge, spelled "A B" or ["A", "B"]; null for anything else. */
function mergePair(m: unknown): [string, string] | null {
  if (typeof m === 'string') {
    const parts = m.split(' ');
    return parts.length === 2 ? [parts[0], parts[1]] : null;
  }
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
  return null;
}

export class BpeModel {
  readonly vocab: ReadonlyMap<string, number>;
  private readonly tokens = new Map<number, string>();
  /** largest vocabulary id */
  readonly maxId: number;
  /** (leftId * base + rightId) -> [rank, newId] */
  private readonly merges = new Map<number, [number, number]>();
  private readonly base: number;
  private readonly ignoreMerges: boolean;

  /** `model`: tokenizer.json `model`; `source` names the file in messages. */
  constructor(model: Record<string, unknown>, source: string) {
    const fail = (msg: string): never => {
      throw new BpeTokenizerError(`${source}: ${msg}`);
    };
    if (model.type !== undefined && model.type !== 'BPE') fail(`model type ${JSON.stringify(model.type)} is not BPE`);
    if (model.dropout !== null && model.dropout !== undefined && model.dropout !== 0) fail('BPE dropout is not supported');
    if (model.byte_fallback === true) fail('byte_fallback is not supported (byte-level BPE needs none)');
    if ((model.continuing_subword_prefix ?? '') !== '' || (model.end_of_word_suffix ?? '') !== '') {
      fail('continuing_subword_prefix / end_of_word_suffix are not supported');
    }
    this.ignoreMerges = model.ignore_merges === true;

    const vocabObj = model.vocab as Record<string, number>;
    if (!vocabObj || typeof vocabObj !== 'object') fail('model.vocab is missing');
    const vocab = new Map<string, number>();
    let maxId = -1;
    for (const [tok, id] of Object.entries(vocabObj)) {
      if (!Number.isInteger(id) || id < 0) fail(`vocab entry ${JSON.stringify(tok)} has id ${id}`);
      vocab.set(tok, id);
      this.tokens.set(id, tok);
      if (id > maxId) maxId = id;
    }
    this.vocab = vocab;
    this.maxId = maxId;
    this.base = maxId + 1;

    const merges = (model.merges as unknown[]) ?? [];
    for (const [rank, m] of merges.entries()) {
      const pair = mergePair(m);
      if (!pair) fail(`merge ${rank} ${JSON.stringify(m)} is neither "A B" nor ["A", "B"]`);
      const [a, b] = pair!;
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      const inew = vocab.get(a + b);
      if (ia === undefined || ib === undefined) fail(`merge ${rank} ${JSON.stringify(m)}: a part is not in the vocabulary`);
      if (inew === undefined) fail(`merge ${rank} ${JSON.stringify(m)}: the result is not in the vocabulary`);
      // a repeated pair keeps its last rank (as tokenizers' HashMap collect does)
      this.merges.set(ia! * this.base + ib!, [rank, inew!]);
    }
  }

  /** The vocabulary token of `id` (added tokens are not the model's). */
  idToToken(id: number): string | undefined {
    return this.tokens.get(id);
  }

  /** BPE of one word given as byte symbols -> ids. */
  encodeWord(symbols: string): number[] {
    const whole = this.ignoreMerges ? this.vocab.get(symbols) : undefined;
    return whole !== undefined ? [whole] : this.mergeWord(symbols);
  }

  private pairMerge(left: number, right: number): [number, number] | undefined {
    return this.merges.get(left * this.base + right);
  }

  private mergeWord(symbols: string): number[] {
    const id: number[] = [];
    for (const ch of symbols) {
      const v = this.vocab.get(ch);
      // no unk token: a symbol missing from the vocabulary is dropped (as tokenizers does)
      if (v !== undefined) id.push(v);
    }
    const n = id.length;
    if (n < 2) return id;
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const q = new MergeQueue();
    const offer = (at: number, left: number, right: number) => {
      const m = this.pairMerge(left, right);
      if (m) q.push(m[0], at, m[1]);
    };
    for (let i = 0; i + 1 < n; i++) offer(i, id[i], id[i + 1]);
    while (q.size) {
      const [, pos, newId] = q.pop();
      if (!alive[pos]) continue;
      const nx = next[pos];
      if (nx < 0) continue;
      const cur = this.pairMerge(id[pos], id[nx]);
      if (!cur || cur[1] !== newId) continue; // stale entry
      id[pos] = newId;
      alive[nx] = 0;
      next[pos] = next[nx];
      if (next[nx] >= 0) prev[next[nx]] = pos;
      const pv = prev[pos];
      if (pv >= 0) offer(pv, id[pv], id[pos]);
      const nn = next[pos];
      if (nn >= 0) offer(pos, id[pos], id[nn]);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(id[i]);
    return out;
  }
}
