import { isMainThread, parentPort, Worker, workerData, type Transferable } from 'node:worker_threads';
import type { Logger } from '../../log.ts';
import { KafkaSinkError } from './errors.ts';
import type { KafkaSinkOptions } from './options.ts';
import type { SinkReset } from '../origin.ts';
import type { WireBatch, WireBufferPool } from './wire-batch.ts';
import { KafkaWriter, type SinkLogger } from './writer.ts';

/** The thread died (or never started): not an answer of the writer. */
export class KafkaThreadError extends KafkaSinkError {}

type RequestBody =
  | { op: 'open'; uncertain: boolean }
  | { op: 'write'; batch: WireBatch }
  | { op: 'reset'; reset: SinkReset }
  | { op: 'close' };
type Request = RequestBody & { id: number };
type Reply =
  | { id: number; ok: true; value?: unknown; spare?: ArrayBuffer }
  | { id: number; ok: false; message: string; spare?: undefined }
  | { log: 'info' | 'warn'; obj: object; msg: string };

const WORKER_MARK = 'tagConnectorKafkaSink';

/** A thread started ahead, its modules loaded, waiting for its options (see prewarmKafkaThread). */
let spare: Worker | undefined;

/**
 * Starts the sink's thread ahead of the sink, without options: it loads its modules (a second or two,
 * far more on a loaded machine) and waits. A standby does this while it waits for the leader lock; the
 * first KafkaThread takes it and sends it the options (nothing talks to Kafka before that). A spare that
 * fails or exits is dropped; the sink then starts a thread of its own as before.
 */
export function prewarmKafkaThread(): void {
  if (spare) return;
  const w = new Worker(new URL(import.meta.url), {
    name: 'kafka-producer',
    workerData: { [WORKER_MARK]: null },
  });
  w.unref();
  const drop = () => {
    if (spare === w) spare = undefined;
  };
  w.on('error', drop);
  w.on('exit', drop);
  spare = w;
}

function takeSpare(): Worker | undefined {
  const w = spare;
  spare = undefined;
  w?.removeAllListeners();
  return w;
}

/**
 * The sink's thread: the producer and its encoding (headers, record batches, compression) cost about as
 * much CPU per event as the rest of the pipeline, and run here beside it instead of on the main thread.
 * Requests are answered in order; a thread that dies fails what was in flight (the next write starts a
 * new one, which reads the checkpoint again before writing).
 */
export class KafkaThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  dead = false;

  constructor(options: Omit<KafkaSinkOptions, 'logger'>, logger: Logger | undefined, pool: WireBufferPool) {
    const ready = takeSpare();
    if (ready) ready.postMessage({ [WORKER_MARK]: options });
    this.worker =
      ready ??
      new Worker(new URL(import.meta.url), {
        // the thread's name in /proc (bench/: its busy share is reported apart from the main thread's)
        name: 'kafka-producer',
        workerData: { [WORKER_MARK]: options },
      });
    this.worker.unref();
    this.worker.on('message', (m: Reply) => {
      if ('log' in m) {
        logger?.[m.log](m.obj, m.msg);
        return;
      }
      if (m.spare) pool.give(m.spare);
      const p = this.pending.get(m.id);
      if (!p) return;
      this.settled(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new KafkaSinkError(m.message));
    });
    const fail = (err: Error) => {
      this.dead = true;
      const all = [...this.pending.values()];
      this.pending.clear();
      this.worker.unref();
      for (const p of all) p.reject(new KafkaThreadError(`the kafka sink's thread failed: ${err.message}`));
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  call<T>(request: RequestBody, transfer: Transferable[] = []): Promise<T> {
    if (this.dead) return Promise.reject(new KafkaThreadError("the kafka sink's thread is gone"));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref(); // a pending answer keeps the process alive
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.dead = true;
    await this.worker.terminate();
  }
}

/** The worker side of KafkaThread. */
function serveKafkaThread(options: KafkaSinkOptions): void {
  const port = parentPort!;
  const log: SinkLogger = {
    info: ((obj: object, msg: string) => port.postMessage({ log: 'info', obj, msg })) as SinkLogger['info'],
    warn: ((obj: object, msg: string) => port.postMessage({ log: 'warn', obj, msg })) as SinkLogger['warn'],
  };
  const tls = options.connection?.tls as { ca?: unknown } | undefined;
  if (tls?.ca instanceof Uint8Array) tls.ca = Buffer.from(tls.ca); // cloned as a plain Uint8Array
  const writer = new KafkaWriter(options, log);
  port.on('message', (r: Request) => {
    const run = async (): Promise<unknown> => {
      switch (r.op) {
        case 'open': {
          const cp = await writer.open();
          if (r.uncertain) writer.uncertain();
          return cp;
        }
        case 'write':
          return writer.write(r.batch);
        case 'reset':
          return writer.writeReset(r.reset);
        case 'close':
          return writer.close();
      }
    };
    run().then(
      (value) => {
        // A written batch's buffer goes back to the main thread's pool: nothing refers to it once
        // every request is answered. (After a failure a send may still hold a view: the GC frees it.)
        const spare = r.op === 'write' ? r.batch.buffer : undefined;
        port.postMessage({ id: r.id, ok: true, value, spare }, spare ? [spare] : []);
        if (r.op === 'close') port.close();
      },
      (err: Error) => port.postMessage({ id: r.id, ok: false, message: err.message }),
    );
  });
}

// This module is the thread's entry (`new URL(import.meta.url)` above): loaded in a KafkaThread's
// worker, it serves it.
if (!isMainThread && workerData && WORKER_MARK in (workerData as object)) {
  const options = (workerData as Record<string, KafkaSinkOptions | null>)[WORKER_MARK];
  if (options) serveKafkaThread(options);
  // a spare (prewarmKafkaThread): the first message brings the options, the next ones are requests
  else
    parentPort!.once('message', (m: Record<string, KafkaSinkOptions>) => serveKafkaThread(m[WORKER_MARK]!));
}
