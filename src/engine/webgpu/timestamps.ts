// Kernel timing with timestamp queries: while a measurement is open every compute pass the
// context begins gets a (begin, end) pair of timestamp writes; at the end the query sets are
// resolved, read back and the pass durations summed. Only compute passes are measured (buffer
// to texture copies between them are not kernel time).

/** Pairs per query set: 4096 queries is WebGPU's largest query set. */
export const PAIRS_PER_SET = 2048;

/**
 * Nanoseconds of `pairs` passes from resolved timestamps [begin0, end0, begin1, end1, ...]. A pass
 * whose end is not after its begin counts 0: WebGPU lets an implementation return such values
 * (timestamps of different passes may even go backwards after a clock change), and a negative
 * duration is no time spent.
 */
export function passNanoseconds(stamps: BigUint64Array, pairs: number): number {
  if (stamps.length < 2 * pairs) throw new RangeError(`passNanoseconds: ${stamps.length} timestamps for ${pairs} passes`);
  let total = 0n;
  for (let i = 0; i < pairs; i++) {
    const begin = stamps[2 * i];
    const end = stamps[2 * i + 1];
    if (end > begin) total += end - begin;
  }
  return Number(total);
}

/** The minimal device surface the recorder uses (a GPUDevice has it; tests pass a fake). */
export type TimestampDevice = Pick<GPUDevice, 'createQuerySet' | 'createBuffer' | 'createCommandEncoder' | 'queue'>;

export class TimestampRecorder {
  private sets: GPUQuerySet[] = [];
  /** pairs handed out from the last set */
  private used = 0;

  constructor(private readonly device: TimestampDevice, private readonly pairsPerSet = PAIRS_PER_SET) {}

  /** passes measured so far */
  get passes(): number {
    return this.sets.length ? (this.sets.length - 1) * this.pairsPerSet + this.used : 0;
  }

  /** The timestampWrites of the next compute pass. */
  nextWrites(): GPUComputePassTimestampWrites {
    if (!this.sets.length || this.used === this.pairsPerSet) {
      this.sets.push(this.device.createQuerySet({ type: 'timestamp', count: 2 * this.pairsPerSet }));
      this.used = 0;
    }
    const i = this.used++;
    return { querySet: this.sets[this.sets.length - 1], beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /**
   * Resolve every pair written (call after the measured work has been submitted), read them back
   * and return the summed pass time in nanoseconds; the query sets are destroyed.
   */
  async read(): Promise<number> {
    let total = 0;
    for (let s = 0; s < this.sets.length; s++) {
      const pairs = s === this.sets.length - 1 ? this.used : this.pairsPerSet;
      if (!pairs) continue;
      const bytes = 2 * pairs * 8;
      const resolved = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = this.device.createCommandEncoder();
      enc.resolveQuerySet(this.sets[s], 0, 2 * pairs, resolved, 0);
      enc.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
      this.device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      total += passNanoseconds(new BigUint64Array(staging.getMappedRange().slice(0)), pairs);
      staging.unmap();
      staging.destroy();
      resolved.destroy();
    }
    for (const q of this.sets) q.destroy();
    this.sets = [];
    this.used = 0;
    return total;
  }
}
