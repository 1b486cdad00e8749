import type pg from 'pg';

/** Handed each CopyData payload, as a range of the buffer it arrived in (valid during the call). */
export type CopyDataHandler = (b: Buffer, start: number, end: number) => void;

/**
 * After each chunk read from the socket (all its CopyData handed over): a promise to wait for before
 * reading on (the consumer's backpressure), or nothing.
 */
export type ChunkHandler = () => Promise<void> | void;

const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const COPY_OUT_RESPONSE = 0x48; // H
const PARAMETER_STATUS = 0x53; // S
const NOTICE = 0x4e; // N
const NOTIFICATION = 0x41; // A

/**
 * `COPY ... TO STDOUT` as a pg submittable (`client.query(copy)`), reading the CopyData messages off
 * the connection's socket itself, as pg-copy-streams does, but handing each message's payload over
 * in place: no Buffer per message, no concatenation, no stream in between. With COPY TO each
 * message holds one row.
 *
 * It takes the socket over when submitted (pauses it and reads on 'readable', so a consumer that
 * waits leaves the data in the kernel: Postgres blocks, memory stays bounded) and gives it back to
 * pg at CopyDone, or at an ErrorResponse (pg reports the error to handleError). `done` settles at
 * ReadyForQuery, with the error if there was one.
 */
export class CopyOut implements pg.Submittable {
  /** Rows, from CommandComplete. */
  rowCount: number | undefined;
  readonly done: Promise<void>;
  private readonly text: string;
  private readonly onData: CopyDataHandler;
  private readonly onChunk: ChunkHandler;
  private stream: pg.Connection['stream'] | undefined;
  private pgDataHandler: ((b: Buffer) => void) | undefined;
  private readonly onReadable = (): void => this.forward();
  private resolve!: () => void;
  private reject!: (err: Error) => void;
  /** A message longer than what has arrived of it: its bytes so far. */
  private partial: Buffer | undefined;
  private partialFill = 0;
  /** Fewer than 5 bytes (a message's code and length) left over from the last chunk. */
  private head: Buffer | undefined;
  private forwarding = false;
  private waiting = false;
  /** The socket is pg's again (or abandoned). */
  private detached = false;

  constructor(text: string, onData: CopyDataHandler, onChunk: ChunkHandler) {
    this.text = text;
    this.onData = onData;
    this.onChunk = onChunk;
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Settled errors are the caller's to read from `done`; never an unhandled rejection here.
    this.done.catch(() => undefined);
  }

  submit(connection: pg.Connection): void {
    const stream = connection.stream;
    const listeners = stream.listeners('data');
    if (listeners.length !== 1)
      throw new Error(`COPY: expected one data listener, found ${listeners.length}`);
    this.stream = stream;
    this.pgDataHandler = listeners[0] as (b: Buffer) => void;
    stream.removeListener('data', this.pgDataHandler);
    stream.pause();
    stream.on('readable', this.onReadable);
    connection.query(this.text);
  }

  /** Stops reading: the connection is left mid-COPY (drop it). */
  abort(): void {
    if (this.detached) return;
    this.detached = true;
    this.stream?.removeListener('readable', this.onReadable);
    this.resolve();
  }

  handleError(err: Error): void {
    this.detach(undefined);
    this.reject(err);
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /COPY (\d+)/.exec(msg?.text ?? '');
    if (m) this.rowCount = Number(m[1]);
  }

  handleReadyForQuery(): void {
    this.resolve();
  }

  private forward(): void {
    if (this.forwarding || this.waiting || this.detached) return;
    this.forwarding = true;
    try {
      let chunk: Buffer | null;
      while (!this.waiting && !this.detached && (chunk = this.stream!.read() as Buffer | null) !== null) {
        this.parse(chunk);
        if (this.detached) break;
        const wait = this.onChunk();
        if (wait) {
          this.waiting = true;
          wait.then(
            () => {
              this.waiting = false;
              this.forward();
            },
            (err: Error) => this.fail(err),
          );
        }
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.forwarding = false;
    }
  }

  /** The consumer failed: stop reading, leave the connection mid-COPY (drop it). */
  private fail(err: Error): void {
    if (!this.detached) {
      this.detached = true;
      this.stream?.removeListener('readable', this.onReadable);
    }
    this.reject(err);
  }

  private parse(chunk: Buffer): void {
    let b = chunk;
    let p = 0;
    if (this.partial) {
      const part = this.partial;
      const take = Math.min(part.length - this.partialFill, chunk.length);
      chunk.copy(part, this.partialFill, 0, take);
      this.partialFill += take;
      if (this.partialFill < part.length) return;
      this.partial = undefined;
      if (!this.message(part, 0, part.length)) {
        this.detach(
          part[0] === COPY_DONE ? chunk.subarray(take) : Buffer.concat([part, chunk.subarray(take)]),
        );
        return;
      }
      p = take;
    } else if (this.head) {
      b = Buffer.concat([this.head, chunk]);
      this.head = undefined;
    }
    const n = b.length;
    while (p < n) {
      if (n - p < 5) {
        this.head = Buffer.from(b.subarray(p));
        return;
      }
      const end = p + 1 + b.readUInt32BE(p + 1);
      if (end > n) {
        this.partial = Buffer.allocUnsafe(end - p);
        b.copy(this.partial, 0, p, n);
        this.partialFill = n - p;
        return;
      }
      if (!this.message(b, p, end)) {
        // CopyDone: what follows is pg's (CommandComplete, ReadyForQuery); anything else is, itself
        // included (an ErrorResponse).
        this.detach(b.subarray(b[p] === COPY_DONE ? end : p));
        return;
      }
      p = end;
    }
  }

  /** One whole message at `b[p, end)`; false when the COPY data is over. */
  private message(b: Buffer, p: number, end: number): boolean {
    switch (b[p]) {
      case COPY_DATA:
        this.onData(b, p + 5, end);
        return true;
      case COPY_OUT_RESPONSE:
      case PARAMETER_STATUS:
      case NOTICE:
      case NOTIFICATION:
        return true;
      default:
        return false;
    }
  }

  /** Gives the socket back to pg, with the bytes it has to parse first. */
  private detach(rest: Buffer | undefined): void {
    if (this.detached) return;
    this.detached = true;
    const stream = this.stream;
    if (!stream) return;
    stream.removeListener('readable', this.onReadable);
    stream.on('data', this.pgDataHandler!);
    if (rest?.length) this.pgDataHandler!(rest);
    // As pg-copy-streams: pg's handler may pause the stream; resume once it has run.
    process.nextTick(() => stream.resume());
  }
}
