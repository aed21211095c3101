// Load a tokenizer release, encode a clip, capture the output of every block, print statistics.
import { capture, loadRelease, readVideo, tensorStats, tokenize } from 'cosmos-ts';

const release = await loadRelease('weights/cosmos-tokenizer-tiny-cv4x8x8', { expect: 'tokenizer' });
const clip = await readVideo('weights/samples/sample_0.y4m');
const isBlock = (path) => /\.(block\.\d+|block_\d+|attn_\d+)$/.test(path);
const { result: tokens, taps } = await capture(isBlock, () => tokenize(release.model, clip));
for (const { path, tensor } of taps.records) {
  const s = await tensorStats(tensor);
  console.log(path.padEnd(28), `[${tensor.shape}]`.padEnd(18), `mean ${s.mean.toFixed(4)} std ${s.std.toFixed(4)}`,
    `min ${s.min.toFixed(3)} max ${s.max.toFixed(3)} nan ${s.nan}`);
}
console.log(`latent [${tokens.shape}] on ${release.backend.adapter}`);
for (const owner of [taps, tokens, release]) owner.dispose();
