/**
 * The fault soak (docs/soak.md): `npm run soak -- --minutes N [--seed S] [--json FILE]`.
 *
 * Two daemons (leader and standby on one slot, advisory-lock HA) stream a steady mixed load to the file
 * sink, Kafka (exactly-once) and Pub/Sub (pstest) while a seeded schedule SIGKILLs them, restarts
 * PostgreSQL (fast and immediate), stops the broker and cuts, slows and blackholes their links through
 * TCP proxies. At the end every sink is compared with a pg_recvlogical reading of a second slot.
 * Exits 1 when the file or Kafka lost or doubled a change, Pub/Sub lost one, a sink saw two writers
 * interleave, or the standby took over before the server ended the leader's session.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from '../test/support/db.ts';
import { createReferenceSlot, currentWalLsn, recvLogical } from '../test/support/recvlogical.ts';
import { fileIds, kafkaIds, PubSubIds } from './collect.ts';
import { describePlacements, placeIds } from './kafka-raw.ts';
import { SupervisedDaemon } from './daemons.ts';
import { FaultInjector } from './faults.ts';
import { Load, LOAD_TABLES, setupLoadTables } from './load.ts';
import { SlotObserver } from './observe.ts';
import { planSchedule, prng } from './schedule.ts';
import { startServers, WAL_SENDER_TIMEOUT_S } from './servers.ts';
import { tally, unread, type SinkTally } from './tally.ts';

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    seed: { type: 'string' },
    json: { type: 'string' },
    // ~180 changes/s: the daemons, restarted every ~13 s, keep up (pstest is the slowest sink)
    'tx-per-second': { type: 'string', default: '10' },
    'large-rows': { type: 'string', default: '3000' },
    'large-every-seconds': { type: 'string', default: '60' },
    'drain-timeout-seconds': { type: 'string', default: '300' },
    keep: { type: 'boolean', default: false },
  },
});
const minutes = Number(flags.minutes);
const seed = flags.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(flags.seed);
if (!(minutes > 0) || !Number.isInteger(seed)) {
  process.stderr.write('usage: npm run soak -- --minutes N [--seed S] [--json FILE] [--keep]\n');
  process.exit(2);
}
const SLOT = 'soak';
const REF_SLOT = 'soak_ref';
const PROJECT = 'tagc-soak';
const TOPIC = 'soak-events';
const say = (msg: string) =>
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tagc-soak-'));
  mkdirSync(join(dir, 'logs'));
  say(`seed ${seed}, ${minutes} min, work dir ${dir}`);
  const servers = await startServers(join(dir, 'logs', 'pg.log'));
  process.env.PUBSUB_EMULATOR_HOST = servers.pubsub.host;
  // Google's auth library probes the GCE metadata server (off loopback): not here.
  process.env.METADATA_SERVER_DETECTION = 'none';
  const rnd = prng(seed);
  const stopAll: (() => Promise<unknown>)[] = [];
  let failed = true;
  try {
    await setupLoadTables(servers.dbUrl);
    const pubsub = await new PubSubIds(PROJECT).subscribe(TOPIC);
    stopAll.push(() => pubsub.close());
    const file = join(dir, 'events.ndjson');
    const t0 = Date.now();
    const argsFor = (i: 0 | 1) => () => [
      'extract-tasks',
      '--pg-url',
      servers.daemonDbUrl(i),
      '--slot',
      SLOT,
      '--sink',
      'file',
      '--sink',
      'kafka',
      '--sink',
      'pubsub',
      '--file-path',
      file,
      '--kafka-brokers',
      servers.kafkaProxy.address,
      '--kafka-replication-factor',
      '1',
      '--kafka-partitions',
      '3',
      '--topic',
      TOPIC,
      '--project-id',
      PROJECT,
      '--serverPort',
      '0',
      '--stream-retention-bytes',
      '0',
      '--batch-size',
      '500',
      '--pubsub-ordering-buckets',
      '16',
    ];
    const env = {
      PUBSUB_EMULATOR_HOST: servers.pubsub.host,
      METADATA_SERVER_DETECTION: 'none',
      TAG_CONNECTOR_LOG_LEVEL: 'info',
    };
    const daemons: [SupervisedDaemon, SupervisedDaemon] = [
      new SupervisedDaemon('a', argsFor(0), env, join(dir, 'logs', 'a.log'), t0),
      new SupervisedDaemon('b', argsFor(1), env, join(dir, 'logs', 'b.log'), t0),
    ];
    // The first daemon creates the slot; the reference slot right after it sees the same changes from
    // the first write of the load on.
    daemons[0].start();
    stopAll.push(() => daemons[0].stop());
    const started = Date.now();
    while (!daemons[0].streamingSince) {
      if (Date.now() - started > 120_000) throw new Error('daemon a never streamed (logs/a.log)');
      await new Promise((r) => setTimeout(r, 100));
    }
    await createReferenceSlot(servers.dbUrl, REF_SLOT);
    daemons[1].start();
    stopAll.push(() => daemons[1].stop());

    const observer = new SlotObserver(servers.dbUrl, SLOT, servers.pgProxies, t0);
    observer.start();
    stopAll.push(async () => observer.stop());
    const load = new Load(servers.dbUrl, {
      txPerSecond: Number(flags['tx-per-second']),
      largeEverySeconds: Number(flags['large-every-seconds']),
      largeRows: Number(flags['large-rows']),
      rnd: prng(seed ^ 0x5eed),
    });
    load.start();

    const durationMs = minutes * 60_000;
    const schedule = planSchedule({
      durationMs,
      seed,
      haBlackholeMs: Math.max(30_000, WAL_SENDER_TIMEOUT_S * 3000),
    });
    say(`${schedule.kills.length} SIGKILLs and ${schedule.infra.length} other faults planned`);
    let over = false;
    const injector = new FaultInjector(servers, daemons, observer, Date.now(), rnd, () => over);
    const progress = setInterval(() => {
      const s = observer.last;
      say(
        `${Math.round((Date.now() - t0) / 1000)}s: ${load.stats.transactions} tx, faults ` +
          `${JSON.stringify(injector.log.counts)}, streamer ${s?.streamer ?? '-'}, connections ` +
          [...servers.pgProxies, servers.kafkaProxy].map((p) => `${p.name} ${p.connections()}`).join(' '),
      );
    }, 30_000);
    const injecting = Promise.all([injector.runKills(schedule.kills), injector.runInfra(schedule.infra)]);
    await new Promise((r) => setTimeout(r, durationMs));
    over = true;
    await injecting;
    clearInterval(progress);
    for (const p of [...servers.pgProxies, servers.kafkaProxy]) p.heal();
    const loadStats = await load.stop();
    const end = await currentWalLsn(servers.dbUrl);
    say(`load stopped at ${end}: ${loadStats.transactions} transactions; reading the reference slot`);
    const expected = await recvLogical(servers.dbUrl, REF_SLOT, end, LOAD_TABLES, 600_000);
    const want = new Set(expected.map((e) => e.id));
    say(`reference: ${expected.length} changes; waiting for the sinks to catch up`);

    // Caught up = the slot confirmed past the end (every sink holds it durably, as the daemon sees
    // it), the file holds every reference id and Pub/Sub has too, or has delivered nothing for
    // PUBSUB_QUIET_MS (pstest has nothing left to hand out: what is missing then is lost). A change
    // missing while the slot has not confirmed past it is a drain that timed out, not a loss.
    const PUBSUB_QUIET_MS = 20_000;
    const drainStarted = Date.now();
    const drainDeadline = drainStarted + Number(flags['drain-timeout-seconds']) * 1000;
    let confirmedPastEnd = false;
    let fileHasAll = false;
    let pubsubDone: 'all' | 'quiet' | false = false;
    let told = Date.now();
    const caughtUp = async () => {
      const [slot] = await sql<{ past: boolean }>(
        servers.dbUrl,
        `SELECT confirmed_flush_lsn >= $2::pg_lsn AS past FROM pg_replication_slots WHERE slot_name = $1`,
        [SLOT, end],
      ).catch(() => [{ past: false }]);
      confirmedPastEnd = slot?.past === true;
      const ids = new Set(await fileIds(file));
      const ps = new Set(pubsub.ids);
      const fileMissing = [...want].filter((id) => !ids.has(id)).length;
      const pubsubMissing = [...want].filter((id) => !ps.has(id)).length;
      fileHasAll = fileMissing === 0;
      const quiet = Date.now() - Math.max(pubsub.lastDeliveryAt, drainStarted) > PUBSUB_QUIET_MS;
      pubsubDone = pubsubMissing === 0 ? 'all' : confirmedPastEnd && quiet ? 'quiet' : false;
      if (Date.now() - told > 30_000) {
        told = Date.now();
        say(
          `drain ${Math.round((told - drainStarted) / 1000)} s: slot confirmed past the end ${confirmedPastEnd}, ` +
            `file missing ${fileMissing}, pubsub missing ${pubsubMissing} (${pubsub.ids.length} deliveries)`,
        );
      }
      return confirmedPastEnd && fileHasAll && pubsubDone !== false;
    };
    while (!(await caughtUp()) && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 2000));
    const drainSeconds = Math.round((Date.now() - drainStarted) / 1000);
    say(`drained in ${drainSeconds} s (slot confirmed past the end: ${confirmedPastEnd}); reading Kafka`);
    // Its own budget, scaled to what it must read: 200k records read_committed through the proxy took
    // 30-60 s on a loaded machine. It stops at the last stable offsets, so the budget is only a bound.
    const kafkaBudgetMs = 60_000 + 2 * want.size;
    const kafka = await kafkaIds(servers.kafkaProxy.address, TOPIC, {
      timeoutMs: kafkaBudgetMs,
      progress: say,
    });
    say(`kafka: ${kafka.records} records in ${kafka.seconds} s, read to the end: ${kafka.complete}`);
    // Ids read_committed did not find: where are they in the log, if anywhere (kafka-raw.ts)?
    let kafkaMissing: string | undefined;
    const readKafka = kafkaSeen(kafka.partitions); // once: 200k ids
    const unreadKafka = [...want].filter((id) => !readKafka.has(id));
    if (unreadKafka.length) {
      kafkaMissing = describePlacements(
        unreadKafka,
        await placeIds(servers.kafkaProxy.address, TOPIC, new Set(unreadKafka)).catch((err: Error) => {
          say(`kafka raw read failed: ${err.message}`);
          return new Map();
        }),
      );
      say(`kafka: ${unreadKafka.length} reference ids not read committed; in the log: ${kafkaMissing}`);
    } else {
      // the diagnosis checks itself on a few ids that were read: they must show as committed
      const sample = expected.filter((_, i) => i % Math.max(1, Math.floor(expected.length / 20)) === 0);
      const placed = await placeIds(
        servers.kafkaProxy.address,
        TOPIC,
        new Set(sample.map((e) => e.id)),
      ).catch(() => new Map());
      say(
        `kafka raw-read self-check on ${sample.length} ids read: ${
          describePlacements(
            sample.map((e) => e.id),
            placed,
          ).split(';')[0]
        }`,
      );
    }
    const exitCodes = [await daemons[0].stop(), await daemons[1].stop()];
    await new Promise((r) => setTimeout(r, 2000)); // last Pub/Sub deliveries
    // A missing id counts as lost only when its reader got to the end after the slot confirmed past it.
    const judged = (t: SinkTally, readToEnd: boolean) => (confirmedPastEnd && readToEnd ? t : unread(t));
    const sinks: Record<string, SinkTally> = {
      file: judged(tally(want, [await fileIds(file)], true), true),
      kafka: judged(tally(want, kafka.partitions, true), kafka.complete),
      pubsub: judged(tally(want, [pubsub.ids], false), pubsubDone !== false),
    };
    const ha = injector.log.ha;
    const haTakeovers = ha.filter((t) => t.takeoverMs !== undefined).length;
    const haOverlap = ha.some((t) => t.overlap) || observer.overlaps > 0;
    const problems: string[] = [];
    for (const name of ['file', 'kafka'] as const) {
      const t = sinks[name]!;
      if (t.lost || t.duplicated || t.foreign || t.orderBreaks)
        problems.push(
          `${name}: lost ${t.lost}, duplicated ${t.duplicated}, foreign ${t.foreign}, order breaks ${t.orderBreaks}`,
        );
    }
    if (sinks.pubsub!.lost || sinks.pubsub!.foreign)
      problems.push(`pubsub: lost ${sinks.pubsub!.lost}, foreign ${sinks.pubsub!.foreign}`);
    for (const [name, t] of Object.entries(sinks))
      if (t.notRead)
        problems.push(`${name}: ${t.notRead} not read (the reader stopped before the end: not proven lost)`);
    if (haOverlap) problems.push('two daemons streamed at once');
    const haPlanned = schedule.infra.filter((f) => f.kind === 'ha-blackhole').length;
    if (haPlanned > 0 && ha.length === 0) problems.push(`none of ${haPlanned} leader blackholes could run`);
    if (haTakeovers < ha.length)
      problems.push(`standby took over in ${haTakeovers} of ${ha.length} leader blackholes`);
    if (expected.length === 0) problems.push('the reference saw no changes');
    if (!confirmedPastEnd)
      problems.push(
        `drain incomplete: the slot had not confirmed ${end} after ${drainSeconds} s (missing = not yet delivered, not proven lost)`,
      );

    const summary = {
      seed,
      minutes,
      command: `npm run soak -- --minutes ${minutes} --seed ${seed}`,
      changes: expected.length,
      transactions: loadStats.transactions,
      largeTransactions: loadStats.large,
      loadFailures: loadStats.failed,
      drainSeconds,
      confirmedPastEnd,
      kafkaMissing,
      readers: {
        kafka: {
          offsets: kafka.offsets,
          complete: kafka.complete,
          records: kafka.records,
          seconds: kafka.seconds,
          budgetS: kafkaBudgetMs / 1000,
        },
        pubsub: { done: pubsubDone, deliveries: pubsub.ids.length, pullErrors: pubsub.pullErrors },
      },
      faults: injector.log.counts,
      faultsSkipped: injector.log.skipped,
      daemonStarts: daemons.map((d) => d.starts),
      selfExits: [...daemons[0].exits, ...daemons[1].exits]
        .filter((e) => !e.killed)
        .map((e) => ({ daemon: e.daemon, atS: Math.round(e.atMs / 1000), code: e.code, log: e.lastLog })),
      finalExitCodes: exitCodes,
      sinks,
      ha: { trials: ha, slotSamples: observer.samples, maxStreamingWalsenders: observer.maxStreaming },
      startups: Object.fromEntries(daemons.map((d) => [d.name, d.startups])),
      peakRssMb: Object.fromEntries(daemons.map((d) => [d.name, Math.round(d.peakRss / 2 ** 20)])),
      timeline: injector.log.timeline,
      problems,
      ok: problems.length === 0,
    };
    if (flags.json) writeFileSync(flags.json, JSON.stringify(summary, null, 2));
    printSummary(summary);
    failed = !summary.ok;
    return summary.ok ? 0 : 1;
  } finally {
    for (const f of stopAll.reverse()) await f().catch(() => undefined);
    await servers.stop();
    if (failed || flags.keep) say(`kept ${dir} (daemon logs in logs/)`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

function kafkaSeen(partitions: string[][]): Set<string> {
  return new Set(partitions.flat());
}

function printSummary(s: {
  seed: number;
  changes: number;
  transactions: number;
  faults: Record<string, number>;
  sinks: Record<string, SinkTally>;
  ha: {
    trials: {
      atMs: number;
      waitedForReadyMs: number;
      takeoverMs?: number;
      walsenderEndedMs?: number;
      lockMovedMs?: number;
      standbyTookLockMs?: number;
      standbyLockToStreamMs?: number;
    }[];
  };
  faultsSkipped: Record<string, number>;
  daemonStarts: number[];
  readers: {
    kafka: { complete: boolean; records: number; seconds: number };
    pubsub: { done: string | boolean };
  };
  peakRssMb: Record<string, number>;
  selfExits: unknown[];
  problems: string[];
}): void {
  const out: string[] = [];
  out.push(`soak seed ${s.seed}: ${s.changes} changes in ${s.transactions} transactions`);
  out.push(
    `faults: ${Object.entries(s.faults)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  for (const [name, t] of Object.entries(s.sinks))
    out.push(
      `${name.padEnd(7)} delivered ${t.delivered}, lost ${t.lost}, duplicated ${t.duplicated}, ` +
        `foreign ${t.foreign}, order breaks ${t.orderBreaks}` +
        (t.notRead ? `, NOT READ ${t.notRead}` : '') +
        (t.lost ? ` (e.g. ${t.examples.lost.join(' ')})` : '') +
        (t.duplicated ? ` (dup e.g. ${t.examples.duplicated.join(' ')})` : ''),
    );
  out.push(
    `faults skipped: ${JSON.stringify(s.faultsSkipped)}; daemon starts ${s.daemonStarts.join(' + ')}; ` +
      `kafka reader: ${s.readers.kafka.records} records in ${s.readers.kafka.seconds} s, to the end ${s.readers.kafka.complete}; ` +
      `pubsub reader done: ${s.readers.pubsub.done}`,
  );
  for (const t of s.ha.trials)
    out.push(
      `ha blackhole at ${Math.round(t.atMs / 1000)} s (waited ${t.waitedForReadyMs} ms for a standby): ` +
        `walsender ended ${t.walsenderEndedMs ?? '-'} ms, lock moved ${t.lockMovedMs ?? '-'} ms, ` +
        `standby took the lock ${t.standbyTookLockMs ?? '-'} ms, streaming ${t.takeoverMs ?? '-'} ms ` +
        `(its lock to streaming ${t.standbyLockToStreamMs ?? '-'} ms)`,
    );
  out.push(`daemon exits by themselves: ${s.selfExits.length}; peak RSS ${JSON.stringify(s.peakRssMb)} MB`);
  out.push(s.problems.length ? `FAILED: ${s.problems.join('; ')}` : 'OK');
  process.stdout.write(out.join('\n') + '\n');
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    say(`error: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
