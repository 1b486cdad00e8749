import type { Metrics } from '../../metrics.ts';

/** Events counted per (table, type) run and added to the metric when the run ends (not per event). */
export class EventCounts {
  private readonly metrics?: Metrics;
  private table = '';
  private type = '';
  private n = 0;

  constructor(metrics?: Metrics) {
    this.metrics = metrics;
  }

  count(table: string, type: string): void {
    if (this.n > 0 && this.table === table && this.type === type) {
      if (++this.n >= 1024) this.flush(); // a huge transaction still shows progress
      return;
    }
    this.flush();
    this.table = table;
    this.type = type;
    this.n = 1;
  }

  flush(): void {
    if (this.n > 0) this.metrics?.events.inc({ table: this.table, type: this.type }, this.n);
    this.n = 0;
  }
}
