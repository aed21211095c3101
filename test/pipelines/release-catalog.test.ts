// Release names as users download them, and the fields an autoregressive release's config.json
// leaves out, completed from the released architecture (spec ar.md §3).
import { describe, expect, it } from 'vitest';
import { completeArConfig, parseArConfig, releasedArConfig, releasedArModelOf } from '../../src/models/ar/config.js';
import { tokenizerCodeOf } from '../../src/models/tokenizer/release-folder.js';
import { RELEASE_CATALOG, findRelease, releaseNameOf } from '../../src/pipelines/release-catalog.js';

// Cosmos-1.0-Autoregressive-5B-Video2World/config.json as published (no grid, no training type)
const AR_5B_JSON = {
  apply_abs_pos_emb: true, context_dim: 1024, dim: 4096, ffn_hidden_size: 14336, insert_cross_attn: true,
  insert_cross_attn_every_k_layers: 1, max_seq_len: 12864, n_heads: 32, n_kv_heads: 8, n_layers: 16, norm_eps: 1e-5,
  norm_type: 'rmsnorm', precision: 'bfloat16', rope_dim: '3D', rope_theta: 500000, use_qk_normalization: true, vocab_size: 64000,
};
const AR_4B_JSON = {
  dim: 4096, ffn_hidden_size: 14336, max_seq_len: 12864, n_heads: 32, n_kv_heads: 8, n_layers: 16, norm_eps: 1e-5,
  norm_type: 'rmsnorm', precision: 'bfloat16', rope_dim: '3D', rope_theta: 500000, use_qk_normalization: true, vocab_size: 64000,
};

describe('release names', () => {
  it('from a path as downloaded: NAME, NAME@revision, the hub cache', () => {
    expect(releaseNameOf('/data/Cosmos-Predict2-2B-Video2World')).toBe('Cosmos-Predict2-2B-Video2World');
    expect(releaseNameOf('models/Cosmos-Predict2.5-2B@diffusers-base-post-trained/')).toBe('Cosmos-Predict2.5-2B');
    expect(releaseNameOf(`/root/.cache/huggingface/hub/models--nvidia--Cosmos-1.0-Tokenizer-CV8x8x8/snapshots/${'a1'.repeat(20)}`)).toBe('Cosmos-1.0-Tokenizer-CV8x8x8');
    expect(findRelease('cosmos-reason1-7b')?.format).toBe('transformers');
    expect(findRelease('Cosmos-1.0-Autoregressive-13B-Video2World')?.ar).toBe('Cosmos-Predict1-13B-Video2World');
    expect(findRelease('Cosmos-9-Nothing')).toBeNull();
  });

  it('tokenizer codes: in a name, a path, or bare; only released ones', () => {
    expect(tokenizerCodeOf('Cosmos-0.1-Tokenizer-DV4x8x8')).toBe('DV4x8x8');
    expect(tokenizerCodeOf('/x/models--nvidia--Cosmos-1.0-Tokenizer-CV8x8x8/snapshots/abc')).toBe('CV8x8x8');
    expect(tokenizerCodeOf('/x/Cosmos-0.1-Tokenizer-CI16x16@main')).toBe('CI16x16');
    expect(tokenizerCodeOf('dv8x16x16')).toBe('DV8x16x16');
    expect(tokenizerCodeOf('Cosmos-Tokenizer CV8x8x8')).toBe('CV8x8x8'); // what identifyRelease calls it
    expect(tokenizerCodeOf('CV7x7x7')).toBeNull();
    expect(tokenizerCodeOf('/x/my-tokenizer')).toBeNull();
    // every tokenizer release of the catalog resolves to its code
    for (const e of RELEASE_CATALOG.filter((x) => x.format === 'cosmos-tokenizer')) expect(tokenizerCodeOf(e.name)).toBe(e.tokenizer);
  });
});

describe('autoregressive config.json completed from the release', () => {
  it('5B-Video2World: the architecture says which release; grid, training type and <bov> rows come from it; the file keeps its own fields', () => {
    expect(releasedArModelOf(AR_5B_JSON)).toBe('Cosmos-Predict1-5B-Video2World');
    const cfg = parseArConfig(completeArConfig(AR_5B_JSON));
    const released = releasedArConfig('Cosmos-Predict1-5B-Video2World');
    expect(cfg).toEqual({ ...released, maxSeqLen: 12864 });
    expect([cfg.trainingType, cfg.videoLatentShape, cfg.embeddingRows, cfg.insertCrossAttn]).toEqual(['text_to_video', [5, 40, 64], 64064, true]);
  });

  it('4B: text-free video prediction (video_to_video, no cross-attention)', () => {
    const cfg = parseArConfig(completeArConfig(AR_4B_JSON));
    expect([cfg.trainingType, cfg.insertCrossAttn, cfg.embeddingRows, cfg.videoLatentShape]).toEqual(['video_to_video', false, 64000, [5, 40, 64]]);
  });

  it('an architecture of no release, or a --release that contradicts the file, is a one-line error', () => {
    expect(() => completeArConfig({ ...AR_4B_JSON, dim: 2048 })).toThrow(/none of the released models .*add video_latent_shape/);
    expect(() => completeArConfig(AR_4B_JSON, 'Cosmos-Predict1-12B')).toThrow(/dim 4096 contradicts the release Cosmos-Predict1-12B \(5120\)/);
    expect(() => completeArConfig(AR_4B_JSON, 'Cosmos-Predict1-5B-Video2World')).toThrow(/insert_cross_attn/);
    // a complete config is left alone
    const full = { ...AR_4B_JSON, video_latent_shape: [2, 4, 4], training_type: 'video_to_video' };
    expect(completeArConfig(full)).toBe(full);
  });
});
