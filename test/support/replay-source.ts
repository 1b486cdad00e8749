import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type {
  ReplicationSource,
  SourceHandlers,
} from '../../src/extractor/replication/replication-source.ts';
import { formatLsn } from '../../src/util/lsn.ts';

/** The captured wal2json messages (200 inserts, then the updates of those rows) bench and tests replay. */
export const WAL2JSON_SAMPLE = fileURLToPath(
  new URL('../../bench/fixtures/wal2json-sample.txt', import.meta.url),
);

/**
 * A replication source that replays captured messages as transactions of their rows, LSNs moved past
 * the previous transaction's, until `target` changes were sent: one socket read's worth (~64 KiB) per
 * turn of the event loop, pause/resume honoured like the real socket. wal2json messages one per line,
 * as `pg_logical_slot_get_changes(..., 'format-version','2', ...)` prints them; or, for a file named
 * `*-pgoutput.txt` (bench/capture-fixtures.ts), pgoutput messages in hex, one per line, whose Relation
 * and Type messages are sent once before the first transaction.
 */
export class ReplaySource implements ReplicationSource {
  readonly plugin: 'wal2json' | 'pgoutput';
  private readonly rowBufs: Buffer[];
  private readonly begin: string;
  private readonly commit: string;
  private readonly beginBuf?: Buffer;
  private readonly commitBuf?: Buffer;
  private readonly preamble: Buffer[] = [];
  private readonly target: number;
  private paused = false;
  private h?: SourceHandlers;
  private tx = 0;
  private row = 0;
  private sent = 0;
  private framingNow: { b: Buffer; c: Buffer };

  constructor(target: number, file = WAL2JSON_SAMPLE) {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    this.plugin = file.endsWith('-pgoutput.txt') ? 'pgoutput' : 'wal2json';
    if (this.plugin === 'pgoutput') {
      const msgs = lines.map((l) => Buffer.from(l, 'hex'));
      const of = (c: string) => msgs.filter((m) => m[0] === c.charCodeAt(0));
      this.rowBufs = msgs.filter((m) => m[0] === 0x49 || m[0] === 0x55); // I, U
      this.preamble = [...of('R'), ...of('Y')];
      this.beginBuf = of('B')[0]!;
      this.commitBuf = of('C')[0]!;
      this.begin = '';
      this.commit = '';
    } else {
      this.rowBufs = lines
        .filter((l) => l.startsWith('{"action":"I"') || l.startsWith('{"action":"U"'))
        .map((r) => Buffer.from(r));
      this.begin = lines.find((l) => l.startsWith('{"action":"B"'))!;
      this.commit = lines.find((l) => l.startsWith('{"action":"C"'))!;
    }
    this.target = target;
    this.framingNow = this.framing(0);
  }

  /** Rows per transaction. */
  get txSize(): number {
    return this.rowBufs.length;
  }

  /** One replayed message's text (row i of the sample). */
  rowText(i: number): string {
    return this.rowBufs[i]!.toString('utf8');
  }

  /** One replayed message's bytes (row i of the sample). */
  rowBuf(i: number): Buffer {
    return this.rowBufs[i]!;
  }

  /** pgoutput: the Relation/Type messages sent before the first transaction. */
  preambleBufs(): readonly Buffer[] {
    return this.preamble;
  }

  /** A BEGIN message's text. */
  beginText(): string {
    return this.begin;
  }

  /** Transaction i: BEGIN/COMMIT with LSNs moved past the previous transaction's. */
  private framing(i: number): { b: Buffer; c: Buffer } {
    if (this.beginBuf && this.commitBuf) {
      // Begin: 'B', final_lsn; Commit: 'C', flags, commit_lsn, end_lsn
      const b = Buffer.from(this.beginBuf);
      const c = Buffer.from(this.commitBuf);
      b.writeBigUInt64BE(0x1000000n + BigInt(i) * 0x100000n, 1);
      c.writeBigUInt64BE(0x1000000n + BigInt(i) * 0x100000n, 2);
      c.writeBigUInt64BE(0x1000000n + BigInt(i) * 0x100000n + 0x30n, 10);
      return { b, c };
    }
    const lsn = formatLsn(0x1000000n + BigInt(i) * 0x100000n);
    const next = formatLsn(0x1000000n + BigInt(i) * 0x100000n + 0x30n);
    const fix = (l: string) =>
      l.replace(/"lsn":"[^"]+"/, `"lsn":"${lsn}"`).replace(/"nextlsn":"[^"]+"/, `"nextlsn":"${next}"`);
    return { b: Buffer.from(fix(this.begin)), c: Buffer.from(fix(this.commit)) };
  }

  async start(handlers: SourceHandlers): Promise<void> {
    this.h = handlers;
    for (const m of this.preamble) handlers.onData('0/0', m);
    setImmediate(() => this.pump());
  }

  private pump(): void {
    const h = this.h!;
    let bytes = 0;
    while (!this.paused && bytes < 65536 && this.sent < this.target) {
      if (this.row === 0) h.onData('0/0', this.framingNow.b);
      const buf = this.rowBufs[this.row]!;
      h.onData('0/0', buf);
      bytes += buf.length;
      this.sent++;
      if (++this.row === this.rowBufs.length || this.sent === this.target) {
        h.onData('0/0', this.framingNow.c);
        this.row = 0;
        this.framingNow = this.framing(++this.tx);
      }
    }
    if (this.sent >= this.target) return;
    if (!this.paused) setImmediate(() => this.pump());
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    setImmediate(() => this.pump());
  }

  sendStatus(): void {}

  /** End LSN of the last transaction, once everything was sent. */
  finalEnd(): bigint | undefined {
    return this.sent >= this.target ? 0x1000000n + BigInt(this.tx - 1) * 0x100000n + 0x30n : undefined;
  }

  async stop(): Promise<void> {}
}
