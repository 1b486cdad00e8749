/**
 * How long each step of a daemon's start-up took, for one log line once it streams (docs/soak.md: under
 * HA a standby that took the lock spent 15-25 s before streaming on a loaded machine, and the log did
 * not say where). Pure: the clock is passed in.
 */
export class StartupSteps {
  private readonly now: () => number;
  private readonly started: number;
  private last: number;
  private readonly steps: [string, number][] = [];

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
    this.started = now();
    this.last = this.started;
  }

  /** Ends a step: the time since the previous mark (or the start) is its duration. */
  mark(step: string): void {
    const t = this.now();
    this.steps.push([step, t - this.last]);
    this.last = t;
  }

  /** Milliseconds per step, in the order they ran (a repeated name adds up). */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [step, ms] of this.steps) out[step] = (out[step] ?? 0) + ms;
    for (const step of Object.keys(out)) out[step] = Math.round(out[step]!);
    return out;
  }

  /** Milliseconds since the start, or since the end of step `after` (from a later mark on). */
  sinceMs(after?: string): number {
    let from = this.started;
    if (after !== undefined) {
      let t = this.started;
      for (const [step, ms] of this.steps) {
        t += ms;
        if (step === after) from = t;
      }
    }
    return Math.round(this.last - from);
  }
}
