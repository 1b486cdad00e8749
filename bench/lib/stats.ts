/** Percentile (nearest rank) of an unsorted sample; NaN for an empty one. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface Quantiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  n: number;
}

export function quantiles(values: number[]): Quantiles {
  let max = NaN;
  for (const v of values) if (!(v <= max)) max = v; // no Math.max(...values): a big sample overflows the stack
  return {
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    max,
    n: values.length,
  };
}

/** Cumulative Prometheus histogram buckets (`le` → count) of one series. */
export type Buckets = [le: number, count: number][];

/** Reads `<name>_bucket{...,le="x"} n` lines whose labels contain `match` (e.g. `sink="file"`). */
export function parseHistogram(text: string, name: string, match = ''): Buckets {
  const out: Buckets = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}_bucket{`) || !line.includes(match)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    const count = /\}\s+([\d.eE+-]+)/.exec(line)?.[1];
    if (le && count) out.push([le === '+Inf' ? Infinity : Number(le), Number(count)]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Bucket-wise difference (after - before), for a window of a running histogram. */
export function diffBuckets(after: Buckets, before: Buckets): Buckets {
  const prev = new Map(before);
  return after.map(([le, n]) => [le, n - (prev.get(le) ?? 0)]);
}

/**
 * Quantile of a cumulative histogram, interpolated linearly inside the bucket (like PromQL's
 * histogram_quantile); an answer in the +Inf bucket is reported as the last finite bound.
 */
export function histogramQuantile(buckets: Buckets, q: number): number {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (!total) return NaN;
  const target = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= target) {
      if (!Number.isFinite(le)) return prevLe;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevLe + ((le - prevLe) * (target - prevCount)) / inBucket : le;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
