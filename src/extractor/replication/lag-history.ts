/** One reading of the slot's lag, kept for the console's chart. */
export interface LagSample {
  /** Unix time in milliseconds. */
  t: number;
  lagBytes: number;
}

/**
 * The slot lag of the last `windowMs` (one hour by default), sampled in memory by the slot monitor:
 * the console's chart needs a short history without a Prometheus at hand. Bounded twice: samples
 * older than the window are dropped, and at most `maxSamples` are kept whatever the sampling rate.
 */
export class LagHistory {
  private readonly samples: LagSample[] = [];
  readonly windowMs: number;
  readonly maxSamples: number;

  constructor(windowMs = 3_600_000, maxSamples = 3600) {
    this.windowMs = windowMs;
    this.maxSamples = maxSamples;
  }

  add(sample: LagSample): void {
    const last = this.samples.at(-1);
    // A clock step backwards would make the chart's x axis non-monotonic: start over from here.
    if (last && sample.t < last.t) this.samples.length = 0;
    this.samples.push(sample);
    this.prune(sample.t);
    if (this.samples.length > this.maxSamples) this.samples.splice(0, this.samples.length - this.maxSamples);
  }

  /** Samples within the window ending at `now`, oldest first (a copy). */
  list(now = Date.now()): LagSample[] {
    this.prune(now);
    return this.samples.slice();
  }

  private prune(now: number): void {
    const from = now - this.windowMs;
    let drop = 0;
    while (drop < this.samples.length && this.samples[drop]!.t < from) drop++;
    if (drop) this.samples.splice(0, drop);
  }
}
