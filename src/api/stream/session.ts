import type { OutboundEvent } from '../../sinks/sink.ts';
import type { StreamLog } from '../../sinks/stream-log.ts';
import { comparePosition, type Position } from '../../util/lsn.ts';
import { matches, type EventFilter } from './filters.ts';

/** How a session reaches its client (SSE response or WebSocket). */
export interface Transport {
  /** Sends one event; returns the bytes now buffered towards the client. */
  send(id: string, json: string): number;
  /** Resolves once the bytes buffered towards the client are below `bytes` (replay paces itself). */
  drained(bytes: number): Promise<void>;
  /** Ends the session with a stated reason. */
  close(reason: { error: string; message: string }): void;
  onClosed(cb: () => void): void;
}

export interface SessionOptions {
  log: StreamLog;
  filter: EventFilter;
  workspaceColumn: string;
  /** Resume strictly after this position (null = live only). */
  after: Position | null;
  /** Bytes buffered towards a client before it is cut off. */
  maxBufferedBytes: number;
}

/**
 * One Stream client: replay from the retention, then live, with no gap and no duplicate at the seam
 * (live events are subscribed first and held while the replay runs; those at or below the last
 * replayed position are dropped). A client that can't keep up is cut off with a reason, never
 * buffered without bound, and never slows the sinks or other clients.
 */
export class StreamSession {
  private readonly o: SessionOptions;
  private readonly t: Transport;
  private held: OutboundEvent[] | null = [];
  private heldBytes = 0;
  private lastSent: Position | null;
  private closed = false;
  private unsubscribe?: () => void;

  constructor(t: Transport, o: SessionOptions) {
    this.t = t;
    this.o = o;
    this.lastSent = o.after;
    t.onClosed(() => this.dispose());
  }

  async run(): Promise<void> {
    this.unsubscribe = this.o.log.subscribe((batch) => this.onLive(batch));
    if (this.o.after) {
      try {
        for await (const line of this.o.log.replay(this.o.after)) {
          if (this.closed) return;
          const e = JSON.parse(line.json) as Parameters<typeof matches>[1] & { id: string };
          this.lastSent = line.position;
          if (matches(this.o.filter, e, this.o.workspaceColumn)) {
            // Replay goes at the client's pace (only live events can outrun a client).
            if (this.t.send(e.id, line.json) > this.o.maxBufferedBytes / 4)
              await this.t.drained(this.o.maxBufferedBytes / 8);
          }
        }
      } catch (err) {
        this.cut('replay_failed', (err as Error).message);
        return;
      }
    }
    // What arrived live during the replay goes out at the client's pace too; once it is drained (no
    // await between the emptiness check and the switch), events are written as they come.
    while (this.held && this.held.length > 0) {
      const batch = this.held.splice(0);
      this.heldBytes = 0;
      for (const e of batch) {
        if (this.closed) return;
        if (this.lastSent && comparePosition(e.position, this.lastSent) <= 0) continue;
        this.lastSent = e.position;
        if (!this.wants(e)) continue;
        if (this.t.send(e.id, e.json) > this.o.maxBufferedBytes / 4)
          await this.t.drained(this.o.maxBufferedBytes / 8);
      }
    }
    this.held = null;
  }

  /** Unfiltered sessions never need the envelope object (parsing it is the costly part). */
  private wants(e: OutboundEvent): boolean {
    const f = this.o.filter;
    if (!f.types && !f.tables && !f.workspaces) return true;
    return matches(f, e.event, this.o.workspaceColumn, e.table);
  }

  private onLive(batch: readonly OutboundEvent[]): void {
    if (this.closed) return;
    if (this.held) {
      for (const e of batch) {
        this.held.push(e);
        this.heldBytes += e.bytes;
      }
      if (this.heldBytes > this.o.maxBufferedBytes)
        this.cut(
          'slow_consumer',
          `client fell behind during replay (buffer limit reached: ${this.heldBytes} bytes in ${this.held.length} events)`,
        );
      return;
    }
    this.deliver(batch);
  }

  private deliver(batch: readonly OutboundEvent[]): void {
    for (const e of batch) {
      if (this.closed) return;
      if (this.lastSent && comparePosition(e.position, this.lastSent) <= 0) continue;
      this.lastSent = e.position;
      if (this.wants(e)) this.emit(e.id, e.json);
    }
  }

  private emit(id: string, json: string): void {
    const buffered = this.t.send(id, json);
    if (buffered > this.o.maxBufferedBytes) {
      this.cut(
        'slow_consumer',
        `client is too slow: more than ${this.o.maxBufferedBytes} bytes buffered; reconnect with Last-Event-ID ${id}`,
      );
    }
  }

  private cut(error: string, message: string): void {
    if (this.closed) return;
    this.t.close({ error, message });
    this.dispose();
  }

  dispose(): void {
    this.closed = true;
    this.unsubscribe?.();
    this.held = null;
  }
}
