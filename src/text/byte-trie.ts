// A trie over byte strings: SentencePiece looks pieces and user-defined symbols up by the UTF-8
// bytes of the text, prefix by prefix.

export interface ByteTrieNode {
  readonly next: Map<number, ByteTrieNode>;
  /** the value of the key ending here, -1 when no key ends here */
  value: number;
}

export class ByteTrie {
  /** the first level; walk it with `level.get(byte)` for the prefixes of a text */
  readonly root = new Map<number, ByteTrieNode>();

  /** Add `key` with `value` (>= 0); a key added twice keeps the last value. */
  insert(key: Uint8Array, value: number): void {
    let level = this.root;
    let node: ByteTrieNode | undefined;
    for (const b of key) {
      node = level.get(b);
      if (!node) {
        node = { next: new Map(), value: -1 };
        level.set(b, node);
      }
      level = node.next;
    }
    if (node) node.value = value;
  }

  get empty(): boolean {
    return this.root.size === 0;
  }

  /** Length of the longest key that prefixes s[i..], 0 if none. */
  longestPrefix(s: Uint8Array, i: number): number {
    let level = this.root;
    let best = 0;
    for (let k = i; k < s.length; k++) {
      const node = level.get(s[k]);
      if (!node) break;
      if (node.value >= 0) best = k - i + 1;
      level = node.next;
    }
    return best;
  }
}
