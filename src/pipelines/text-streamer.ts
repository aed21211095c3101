// Streaming the answer's text: each generated token's text as soon as its bytes complete UTF-8
// characters, as transformers' TextStreamer prints it.
import { type ByteLevelBpeTokenizer, UNICODE_TO_BYTE } from '../text/bpe.js';

/**
 * Incremental detokenizer: the text of each new token as soon as its bytes complete UTF-8
 * characters (a character split over several byte-level tokens appears once all of it is
 * there). The concatenation of everything push() and flush() return equals
 * tokenizer.decode(ids, {skipSpecialTokens}).
 */
export class TextStreamer {
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private readonly encoder = new TextEncoder();
  private readonly skipSpecial: boolean;

  constructor(private readonly tokenizer: ByteLevelBpeTokenizer, options: { skipSpecialTokens?: boolean } = {}) {
    this.skipSpecial = options.skipSpecialTokens ?? true;
  }

  /** The bytes of one token as the byte-level decoder produces them. */
  tokenBytes(id: number): Uint8Array {
    const added = this.tokenizer.addedToken(id);
    if (added?.special && this.skipSpecial) return new Uint8Array(0);
    const tok = added ? added.content : this.tokenizer.idToToken(id);
    if (tok === undefined) return new Uint8Array(0);
    const out: number[] = [];
    for (const ch of tok) {
      const b = UNICODE_TO_BYTE.get(ch);
      if (b === undefined) return this.encoder.encode(tok);
      out.push(b);
    }
    return Uint8Array.from(out);
  }

  push(id: number): string {
    return this.decoder.decode(this.tokenBytes(id), { stream: true });
  }

  /** Whatever is left (an incomplete sequence at the end becomes U+FFFD). */
  flush(): string {
    return this.decoder.decode();
  }
}
