import type { OutboundEvent } from '../../sinks/sink.ts';
import type { StreamLog } from '../../sinks/stream-log.ts';
import { comparePosition, type Position } from '../../util/lsn.ts';
import { leftScopeJson, StreamFilter, type EventFilter, type EventLike } from './filters.ts';

/** How a session reaches its client (SSE response or WebSocket). */
export interface Transport {
  /** Sends one event; returns the bytes now buffered towards the client. */
  send(id: string, json: string): number;
  /**
   * Resolves once the bytes buffered towards the client are below `bytes` (replay paces itself), or
   * the client is gone: a session waiting here must see its close, else it (and its replay's open
   * segment file) would wait forever.
   */
  drained(bytes: number): Promise<void>;
  /** Ends the session with a stated reason. */
  close(reason: { error: string; message: string }): void;
  onClosed(cb: () => void): void;
}

export interface SessionOptions {
  log: StreamLog;
  filter: EventFilter;
  workspaceColumn: string;
  /** Whether a table has the workspace column (undefined: not known). */
  hasWorkspaceColumn?: (schema: string, table: string) => boolean | undefined;
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
  private readonly filter: StreamFilter;

  constructor(t: Transport, o: SessionOptions) {
    this.t = t;
    this.o = o;
    this.filter = new StreamFilter(o.filter, o.workspaceColumn, o.hasWorkspaceColumn);
    this.lastSent = o.after;
    t.onClosed(() => this.dispose());
  }

  async run(): Promise<void> {
    this.unsubscribe = this.o.log.subscribe((batch) => this.onLive(batch));
    if (this.o.after) {
      try {
        // Leaving this loop (return, throw) closes the replay and its segment file.
        for await (const line of this.o.log.replay(this.o.after)) {
          if (this.closed) return;
          const e = JSON.parse(line.json) as EventLike & { id: string };
          this.lastSent = line.position;
          const json = this.judged(e, line.json);
          if (json === null) continue;
          // Replay goes at the client's pace (only live events can outrun a client).
          if (this.t.send(e.id, json) > this.o.maxBufferedBytes / 4) {
            await this.t.drained(this.o.maxBufferedBytes / 8);
            if (this.closed) return;
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
        const json = this.wanted(e);
        if (json === null) continue;
        if (this.t.send(e.id, json) > this.o.maxBufferedBytes / 4) {
          await this.t.drained(this.o.maxBufferedBytes / 8);
          if (this.closed) return;
        }
      }
    }
    this.held = null;
  }

  /** The JSON to send for a live event, or null. Unfiltered sessions never parse the envelope. */
  private wanted(e: OutboundEvent): string | null {
    if (this.filter.passesAll()) return e.json;
    return this.judged(e.event, e.json, e.table);
  }

  /** The JSON to send for an event (itself, or the delete of a row that left scope), or null. */
  private judged(e: EventLike, json: string, root?: string): string | null {
    const verdict = this.filter.judge(e, root);
    if (verdict === 'skip') return null;
    return verdict === 'left' ? leftScopeJson(json, this.o.workspaceColumn) : json;
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
      const json = this.wanted(e);
      if (json !== null) this.emit(e.id, json);
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
