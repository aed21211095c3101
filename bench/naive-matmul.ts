// The same-run yardstick of every kernel bench, in Node and on the page: GFLOP/s of a naive
// triple-loop JS matmul (n^3, f32 arrays) measured now. No imports, so the page's bundle can take
// it beside its stand-in harness.

/** GFLOP/s of a naive triple-loop JS matmul (n^3, f32 arrays), measured now. */
export function naiveMatmulGflops(quick: boolean): number {
  const n = quick ? 128 : 256;
  const a = new Float32Array(n * n);
  const b = new Float32Array(n * n);
  // a fixed linear-congruential fill: the values only need to be ordinary floats
  let s = 1;
  for (let i = 0; i < n * n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    a[i] = s / 1073741824 - 1;
    b[n * n - 1 - i] = a[i];
  }
  const c = new Float32Array(n * n);
  const once = () => {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += a[i * n + k] * b[k * n + j];
        c[i * n + j] = acc;
      }
    }
  };
  once();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < (quick ? 300 : 1500)) {
    once();
    reps++;
  }
  return (2 * n ** 3) / ((performance.now() - t0) / 1000 / reps) / 1e9;
}
