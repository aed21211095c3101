import { loadWeights } from '../src/engine/module.js';
import { declaredSource } from '../src/engine/plan/params.js';
import { planBackend } from '../src/engine/select.js';
import { Tensor, numel } from '../src/engine/tensor.js';
import { RELEASED_DITS } from '../src/models/dit/released.js';
import { CosmosTransformer3DFamily } from '../src/models/dit/transformer.js';
import { mlpChunkTokens } from '../src/pipelines/world/sample.js';
const name = process.argv[2] ?? 'Cosmos-1.0-Diffusion-14B-Text2World';
const [T, H, W] = (process.argv[3] ?? '16,88,160').split(',').map(Number);
const gpu = process.argv[4] === 'gpu';
const be = planBackend(gpu ? { limits: { maxBufferBytes: 2 ** 32, maxBindingBytes: 2 ** 31 } } : {});
const m = CosmosTransformer3DFamily.build(RELEASED_DITS[name].config);
await loadWeights(m, declaredSource(m, 'bf16'), be);
const params = be.memory().liveBytes;
const tokens = (T * H * W) / 4;
m.ffChunkTokens = mlpChunkTokens(be, m.config, m.hiddenSize, tokens);
const inp = (s: number[]) => new Tensor(be.alloc('f32', numel(s)), s);
be.resetPeakMemory();
const cin = m.config.inChannels;
const x = inp([1, m.config.outChannels, T, H, W]);
const out = m.forward({ hiddenStates: x, timestep: inp([1]), encoderHiddenStates: inp([1, 512, m.config.useCrossattnProjection ? m.config.crossattnProjInChannels : m.config.textEmbedDim]), fps: 24, paddingMask: inp([1, 1, H * 8, W * 8]), conditionMask: cin === m.config.outChannels + 1 ? inp([1, 1, T, H, W]) : null });
const G = 2 ** 30;
console.log(name, 'tokens', tokens, 'chunk', m.ffChunkTokens, 'params GiB', (params / G).toFixed(2), 'peak GiB', (be.memory().peakBytes / G).toFixed(2), 'act GiB', ((be.memory().peakBytes - params) / G).toFixed(2), 'A', (tokens * m.hiddenSize * 4 / G).toFixed(2));
// trace one block
{
  const be2 = planBackend();
  const m2 = CosmosTransformer3DFamily.build({ ...RELEASED_DITS[name].config, num_layers: 1 });
  await loadWeights(m2, declaredSource(m2, 'bf16'), be2);
  const A = tokens * m2.hiddenSize * 4;
  const orig = be2.track.bind(be2);
  let live = 0; const log: string[] = [];
  (be2 as any).track = (b: number) => { orig(b); live += b; if (Math.abs(b) >= A / 4) log.push(`${b > 0 ? '+' : '-'}${(Math.abs(b) / A).toFixed(2)}A live=${(live / A).toFixed(1)}A ${new Error().stack!.split('\n').slice(3, 6).map((s) => s.trim().replace(/\(.*src\//, '(').replace(/^at /, '')).join(' < ')}`); };
  const inp2 = (s: number[]) => new Tensor(be2.alloc('f32', numel(s)), s);
  m2.ffChunkTokens = m.ffChunkTokens;
  m2.forward({ hiddenStates: inp2([1, m2.config.outChannels, T, H, W]), timestep: inp2([1]), encoderHiddenStates: inp2([1, 512, m2.config.textEmbedDim]), fps: 24, paddingMask: inp2([1, 1, H * 8, W * 8]), conditionMask: cin === m2.config.outChannels + 1 ? inp2([1, 1, T, H, W]) : null });
  console.log(log.join('\n'));
}
