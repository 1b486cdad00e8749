import type { Metrics } from '../../metrics.ts';
import type { CheckpointTracker } from './checkpoint-tracker.ts';

/**
 * A paused stream resumes once in-flight events and bytes are back under this share of their bounds.
 * Not half: a sink's acknowledgement frees one batch, and with half the bound as the mark (5,000
 * events, 2,000-event batches) the stream stayed paused through the whole next batch, so the sink got
 * smaller batches and the decoder idled a third of the time (Kafka catch-up).
 */
const RESUME_FRACTION = 0.9;

export interface FlowBounds {
  maxInFlightEvents: number;
  maxInFlightBytes: number;
}

/** What flow control pauses: the replication socket (TCP backpressure). */
export interface Tap {
  pause(): void;
  resume(): void;
}

/**
 * Backpressure (docs/design.md §2): in-flight events and bytes are bounded; at the bound the tap is
 * paused until the sinks acknowledge enough to come back under the resume mark.
 */
export class FlowControl {
  private readonly tracker: CheckpointTracker;
  private readonly bounds: FlowBounds;
  private readonly tap: Tap;
  private readonly metrics?: Metrics;
  private waiter?: () => void;
  paused = false;

  constructor(tracker: CheckpointTracker, bounds: FlowBounds, tap: Tap, metrics?: Metrics) {
    this.tracker = tracker;
    this.bounds = bounds;
    this.tap = tap;
    this.metrics = metrics;
  }

  overCapacity(): boolean {
    return (
      this.tracker.inFlightEvents() >= this.bounds.maxInFlightEvents ||
      this.tracker.inFlightBytes() >= this.bounds.maxInFlightBytes
    );
  }

  private underResumeMark(): boolean {
    return (
      this.tracker.inFlightEvents() <= this.bounds.maxInFlightEvents * RESUME_FRACTION &&
      this.tracker.inFlightBytes() <= this.bounds.maxInFlightBytes * RESUME_FRACTION
    );
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.metrics?.paused.set(1);
    this.tap.pause();
  }

  /** Resolves once in-flight events and bytes are under their bounds again (or wake() is called). */
  waitForCapacity(): Promise<void> {
    return new Promise<void>((r) => (this.waiter = r));
  }

  /** Releases a waiter regardless of capacity (the pipeline failed). */
  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * After a sink acknowledged or the input ran dry: publishes the in-flight gauges, wakes a waiter
   * with room again, and resumes the tap when `mayResume` (nothing queued, not stopping) and under
   * the resume mark.
   */
  update(mayResume: boolean): void {
    const m = this.metrics;
    if (m) {
      m.inFlight.set(this.tracker.inFlightEvents());
      m.inFlightBytes.set(this.tracker.inFlightBytes());
    }
    if (this.waiter && !this.overCapacity()) this.wake();
    if (this.paused && mayResume && this.underResumeMark()) {
      this.paused = false;
      m?.paused.set(0);
      this.tap.resume();
    }
  }
}
