// The keyword stage of the text guard (cosmos-predict1 blocklist/blocklist.py, spec guardrail.md
// "Blocklist"): a prompt is unsafe when
//   (a) the keyword censor (censor.ts, loaded with the custom/ words minus the whitelist/ words)
//       hides a word of it, once whitelisted words are put back position by position,
//   (b) the same holds for the prompt rewritten as its word tokens' noun lemmas (words.ts), or
//   (c) an exact_match/ word occurs in it as a whole word, or (for a word of at least
//       `minChars` characters) a run of as many prompt words is at least
//       (len - letterCount) / len similar to it (difflib's ratio).
// Every check works on the prompt with each run of non-ASCII characters replaced by one space.
import { UserError } from '../../engine/errors.js';
import { type FileSystem, fileSystem, readText } from '../../io/files.js';
import { join } from '../../io/path.js';
import { KeywordCensor } from './censor.js';
import { PUNCTUATION, lemmatize, pyCollapseSpaces, pySplit, pyStrip, sequenceRatio, stripChars, toAscii, tokenize } from './words.js';

/**
 * The censor mark of cosmos-predict1: termcolor's red "*". Only the mark is searched for, so a
 * literal "*" in a prompt does not block it (cosmos_guardrail's plain "*" would: pass censor '*').
 */
export const PREDICT1_CENSOR = '\x1b[31m*\x1b[0m';

export interface BlocklistOptions {
  fs?: FileSystem;
  /** exact_match/ words at least this long are also matched partially (predict1: 6; Cosmos-1.0 and cosmos_guardrail: 4) */
  minChars?: number;
  /** letters a partial match may differ by (predict1: 0.4; Cosmos-1.0 and cosmos_guardrail: 0.5) */
  letterCount?: number;
  /** what a hidden word is written with, searched for to decide (default PREDICT1_CENSOR) */
  censor?: string;
}

export interface BlocklistVerdict {
  safe: boolean;
  message: string;
}

export interface BlocklistWords {
  custom: readonly string[];
  whitelist: readonly string[];
  exactMatch: readonly string[];
}

/** A keyword folder's sub-folder that is not there. */
export class BlocklistFolderError extends UserError {}

export class Blocklist {
  readonly name = 'BLOCKLIST';
  private readonly censor: KeywordCensor;
  private readonly whitelist: Set<string>;
  private readonly mark: string;
  private readonly minChars: number;
  private readonly letterCount: number;

  constructor(readonly words: BlocklistWords, o: Omit<BlocklistOptions, 'fs'> = {}) {
    this.censor = new KeywordCensor(words.custom, words.whitelist);
    this.whitelist = new Set(words.whitelist.map((w) => w.toLowerCase()));
    this.mark = o.censor ?? PREDICT1_CENSOR;
    this.minChars = o.minChars ?? 6;
    this.letterCount = o.letterCount ?? 0.4;
  }

  check(prompt: string): BlocklistVerdict {
    if (prompt === '') return { safe: false, message: 'Input is empty' };
    const ascii = toAscii(prompt);
    const whole = this.censored(ascii);
    if (whole) return whole;
    const lemmas = this.censored(tokenize(ascii).map(lemmatize).join(' '));
    if (lemmas) return lemmas;
    const exact = this.exactMatch(ascii);
    if (exact) return exact;
    return { safe: true, message: 'Input is safe' };
  }

  /** (a) / (b): the censor's verdict on `text`, whitelisted words put back by position. */
  private censored(text: string): BlocklistVerdict | null {
    const out = pySplit(this.censor.censor(text, this.mark));
    pySplit(text).forEach((token, i) => {
      // a phrase hidden as one word shifts the positions (upstream then indexes past the end: skipped here)
      if (i < out.length && this.whitelist.has(stripChars(token, PUNCTUATION).toLowerCase())) out[i] = token;
    });
    const joined = out.join(' ');
    if (!joined.includes(this.mark)) return null;
    return { safe: false, message: `Prompt blocked by censorship: Censored Prompt: ${joined.split(this.mark).join('*')}` };
  }

  /** (c): whole-word and partial matches of the exact_match/ words. */
  private exactMatch(prompt: string): BlocklistVerdict | null {
    const norm = pyStrip(pyCollapseSpaces(prompt)).toLowerCase();
    const promptWords = pySplit(norm);
    for (const word of this.words.exactMatch) {
      const w = pyStrip(pyCollapseSpaces(word)).toLowerCase();
      if (new RegExp(`\\b${escapeRegExp(w)}\\b`).test(norm)) {
        return { safe: false, message: `Prompt blocked by exact match blocklist: Prompt: ${prompt}, Exact Match Word: ${word}` };
      }
      const len = Array.from(w).length;
      if (len < this.minChars) continue;
      const need = (len - this.letterCount) / len;
      const n = pySplit(w).length;
      for (let i = 0; i + n <= promptWords.length; i++) {
        if (sequenceRatio(promptWords.slice(i, i + n).join(' '), w) >= need) {
          return { safe: false, message: `Prompt blocked by partial match blocklist: Prompt: ${norm}, Partial Match Word: ${w}` };
        }
      }
    }
    return null;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * The keywords of every file in a folder, one per line, stripped. Files are taken in name order
 * (upstream: directory order, which only changes which word a message names). Blank lines are
 * skipped: upstream keeps them as empty keywords, and an empty exact-match word matches every
 * prompt that has a letter in it.
 */
export async function readKeywordFolder(folder: string, fs: FileSystem = fileSystem()): Promise<string[]> {
  if ((await fs.stat(folder))?.kind !== 'directory') throw new BlocklistFolderError(`${folder}: missing (a blocklist folder holds custom/, whitelist/ and exact_match/ keyword folders)`);
  const out: string[] = [];
  for (const name of await fs.list(folder)) {
    const path = join(folder, name);
    if ((await fs.stat(path))?.kind !== 'file') continue;
    for (const line of (await readText(path, fs)).split(/\r\n|\r|\n/)) {
      const w = pyStrip(line);
      if (w !== '') out.push(w);
    }
  }
  return out;
}

/** A released blocklist/ folder: custom/, whitelist/ and exact_match/ (its nltk_data/ is not used here). */
export async function loadBlocklist(folder: string, o: BlocklistOptions = {}): Promise<Blocklist> {
  const fs = o.fs ?? fileSystem();
  const [custom, whitelist, exactMatch] = await Promise.all(['custom', 'whitelist', 'exact_match'].map((d) => readKeywordFolder(join(folder, d), fs)));
  return new Blocklist({ custom, whitelist, exactMatch }, o);
}
