// Scalar special functions the CPU oracle needs that JavaScript's Math lacks. They run in
// float64, far beyond the f32 accuracy the kernels are compared at.

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const SQRT_PI = Math.sqrt(Math.PI);

/** Below this |x| the series is used; above it the continued fraction converges quickly. */
const SERIES_LIMIT = 3;

// erf x = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1)). Unlike the Taylor series
// every term has the sign of x, so nothing cancels and the sum keeps full double precision.
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

// erfc x = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) for x > 0, evaluated
// bottom-up; at x >= 3 sixty levels are well past convergence.
function erfcContinuedFraction(x: number): number {
  let t = x;
  for (let n = 60; n >= 1; n--) t = x + n / 2 / t;
  return Math.exp(-x * x) / (SQRT_PI * t);
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (Math.abs(x) < SERIES_LIMIT) return erfSeries(x);
  return Math.sign(x) * (1 - erfcContinuedFraction(Math.abs(x)));
}

/** 1 - erf x, without the cancellation of computing it that way for large x. */
export function erfc(x: number): number {
  if (x >= SERIES_LIMIT) return erfcContinuedFraction(x);
  return 1 - erf(x);
}

/** Round half to even (torch.round); NaN and infinities pass through. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  const r = d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
  // torch keeps the sign of a negative input that rounds to zero (round(-0.4) is -0)
  return r === 0 && x < 0 ? -0 : r;
}
