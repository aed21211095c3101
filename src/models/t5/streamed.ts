// The T5 encoder run with its weights read as the pass reaches them: the embedding first, then each
// block loaded, run on every sequence and freed, then the final norm. T5-11B's encoder is 9.3 GiB
// of bf16 weights but one block is 384 MiB, so a prompt phase that encodes once (the prompt and the
// negative prompt in the same pass) peaks at one block plus activations, and a device whose memory
// cannot hold the encoder still runs it. On a GPU the reads of block i + 1 overlap block i's
// kernels: they are queued before the next block loads, and its weights are written behind them.
import type { Backend } from '../../engine/backend.js';
import { type LoadOptions, type Module, type TensorSource, loadWeights } from '../../engine/module.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { T5EncoderModel } from './encoder.js';

/** Where a streamed pass reads the weights from: the checkpoint and the family's load options. */
export interface T5WeightSource {
  readonly source: TensorSource;
  readonly options: LoadOptions;
}

/**
 * The encoder's last_hidden_state [1, n, d_model] for each sequence of ids (all real tokens, no
 * padding), reading `shared`, each block and the final norm from `weights` when the pass comes to
 * them and freeing each after. The model's parameters are left unloaded.
 */
export async function encodeStreamed(model: T5EncoderModel, weights: T5WeightSource, backend: Backend, sequences: readonly Int32Array[]): Promise<Tensor[]> {
  const load = (part: Module) => loadWeights(model, weights.source, backend, { ...weights.options, part });
  const batches = sequences.map((ids) => model.batch({ data: ids, shape: [1, ids.length] }));
  let hs: Tensor[] = [];
  let biases: Tensor[] = [];
  try {
    await load(model.shared);
    hs = batches.map((b) => scope(() => model.embed(b)));
    model.shared.dispose();
    for (const [i, block] of model.encoder.block.entries()) {
      await load(block);
      // block 0 holds the position bias table every block adds
      if (i === 0) biases = batches.map((b) => scope(() => model.positionBias(b)));
      for (let k = 0; k < hs.length; k++) {
        const h = hs[k];
        hs[k] = scope(() => block.forward(h, biases[k], batches[k].explicit));
        h.dispose();
      }
      block.dispose();
    }
    await load(model.encoder.final_layer_norm);
    const out: Tensor[] = [];
    try {
      for (const h of hs) out.push(scope(() => model.encoder.final_layer_norm.forward(h)));
    } catch (e) {
      for (const t of out) t.dispose();
      throw e;
    }
    return out;
  } finally {
    for (const t of [...hs, ...biases]) t.dispose();
    model.dispose();
  }
}
