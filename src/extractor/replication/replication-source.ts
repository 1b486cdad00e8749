import type { ClientConfig } from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import type pg from 'pg';
import type { Lsn } from '../../util/lsn.ts';
import { standbyStatusUpdate } from './standby-status.ts';

export interface SourceHandlers {
  onData(walLsn: string, payload: Buffer): void;
  onKeepalive(walEnd: string, replyRequested: boolean): void;
  /**
   * A NoticeResponse from the walsender, in stream order with the data (an output plugin's WARNING
   * may be the only trace of a change it left out: decode/server-notices.ts).
   */
  onNotice?(severity: string, message: string): void;
  /** The stream ended: by stop() (err undefined) or by a failure. */
  onClose(err?: Error): void;
}

/** The replication connection: bytes in, status updates out, and a tap to pause it (TCP backpressure). */
export interface ReplicationSource {
  start(handlers: SourceHandlers): Promise<void>;
  pause(): void;
  resume(): void;
  sendStatus(lsn: Lsn, replyRequested?: boolean): void;
  stop(): Promise<void>;
}

export interface StartCommand {
  slot: string;
  /** Output plugin options for START_REPLICATION. */
  options: Record<string, string>;
}

interface InternalConnection {
  stream: { pause(): void; resume(): void };
  sendCopyFromChunk(buf: Buffer): void;
}

let hiCache = -1;
let hiText = '';

/** `X/Y` of the 8-byte LSN at `offset`, as Postgres writes it (upper-case hex, no padding). */
function lsnText(buf: Buffer, offset: number): string {
  const hi = buf.readUInt32BE(offset);
  if (hi !== hiCache) {
    hiCache = hi;
    hiText = hi.toString(16).toUpperCase() + '/';
  }
  return (
    hiText +
    buf
      .readUInt32BE(offset + 4)
      .toString(16)
      .toUpperCase()
  );
}

function onCopyData(chunk: Buffer, handlers: SourceHandlers): void {
  const kind = chunk[0];
  if (kind === 0x77) {
    // XLogData: 'w', start LSN, end LSN, send time, then the plugin's bytes.
    handlers.onData(lsnText(chunk, 1), chunk.subarray(25));
  } else if (kind === 0x6b) {
    // Primary keepalive: 'k', WAL end, send time, reply requested.
    handlers.onKeepalive(lsnText(chunk, 1), chunk[17] === 1);
  }
}

/**
 * ReplicationSource over pg-logical-replication. We use its connection handling and START_REPLICATION
 * but read the CopyData messages ourselves, and we don't use its acknowledgements: `acknowledge.auto` and its periodic timer (`timeoutSeconds`) confirm
 * LSNs as soon as they are *received*, which would lose undelivered changes on a crash. Both are off;
 * the pipeline sends standby status updates with the durable low watermark itself.
 */
export class PgReplicationSource implements ReplicationSource {
  private readonly clientConfig: ClientConfig;
  private readonly command: StartCommand;
  private service?: LogicalReplicationService;
  private paused = false;
  private stopping = false;

  constructor(clientConfig: ClientConfig, command: StartCommand) {
    this.clientConfig = clientConfig;
    this.command = command;
  }

  private connection(): InternalConnection | undefined {
    // The library keeps the pg connection private; we need its socket for pause/resume and to write
    // our own status updates.
    return (this.service as unknown as { _connection?: InternalConnection } | undefined)?._connection;
  }

  async start(handlers: SourceHandlers): Promise<void> {
    this.stopping = false;
    const service = new LogicalReplicationService(this.clientConfig, {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: false },
    });
    this.service = service;
    const options = this.command.options;
    const plugin = {
      options,
      name: 'raw',
      // The decoders work on the raw bytes: JSON.parse here would round int8 values.
      parse: (buffer: Buffer) => buffer,
      start: (client: pg.Client, slot: string, lsn: string) => {
        const opts = Object.entries(options)
          .map(([k, v]) => `"${k}" '${v.replace(/'/g, "''")}'`)
          .join(', ');
        return client.query(`START_REPLICATION SLOT "${slot}" LOGICAL ${lsn}${opts ? ` (${opts})` : ''}`);
      },
    };
    let closed = false;
    let failStart: (err: Error) => void = () => undefined;
    const close = (err?: Error) => {
      if (closed) return;
      closed = true;
      const reason = this.stopping ? undefined : (err ?? new Error('replication connection closed'));
      // Closed before 'start' (refused, auth failed, slot busy): start() rejects with the cause. A
      // rejection after start resolved is a no-op, the failure then reaches the caller via onClose.
      failStart(reason ?? new Error('replication connection stopped while starting'));
      handlers.onClose(reason);
    };
    service.on('error', (err: Error) => close(err));
    const started = new Promise<void>((resolve, reject) => {
      failStart = reject;
      service.once('start', () => {
        // From here on we read CopyData ourselves: the library's handler formats two LSN strings,
        // emits an event and starts an async acknowledgement (a promise) for every message, which
        // is a fair share of the per-change cost. 'start' comes from the CopyBothResponse, before
        // any CopyData of the stream, so swapping handlers here loses nothing.
        const conn = this.connection() as unknown as NodeJS.EventEmitter | undefined;
        conn?.removeAllListeners('copyData');
        conn?.on('copyData', (msg: { chunk: Buffer }) => onCopyData(msg.chunk, handlers));
        // pg.Client emits 'notice' as it parses, between the CopyData messages around it.
        const client = (service as unknown as { _client?: NodeJS.EventEmitter })._client;
        client?.on('notice', (n: { severity?: string; message?: string }) =>
          handlers.onNotice?.(n.severity ?? 'NOTICE', n.message ?? ''),
        );
        resolve();
      });
      const running = service.subscribe(plugin as never, this.command.slot, '0/0');
      running.then(
        () => close(),
        (err: Error) => close(err),
      );
    });
    await started;
    if (this.paused) this.connection()?.stream.pause();
  }

  pause(): void {
    this.paused = true;
    this.connection()?.stream.pause();
  }

  resume(): void {
    this.paused = false;
    this.connection()?.stream.resume();
  }

  sendStatus(lsn: Lsn, replyRequested = false): void {
    if (lsn === 0n) return; // InvalidXLogRecPtr: nothing confirmed yet, send nothing
    this.connection()?.sendCopyFromChunk(standbyStatusUpdate(lsn, Date.now(), replyRequested));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const s = this.service;
    this.service = undefined;
    if (s) await s.destroy().catch(() => undefined);
  }
}
