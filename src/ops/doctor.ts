import { errors } from '../errors.ts';

/**
 * `tag-connector doctor`, the pure half: facts gathered from a server (src/ops/doctor-facts.ts) go in,
 * findings come out, each with the exact change to make. No I/O here, so every rule is unit-tested.
 */

export type Level = 'ok' | 'warn' | 'fail';

/** What bench/ measured for pgoutput against wal2json (docs/performance.md has the table). */
const PGOUTPUT_MEASURED =
  'wal2json works; --plugin pgoutput is faster: its walsender needs about half the CPU per change ' +
  '(11-13 against 20-23 µs on a wide REPLICA IDENTITY FULL table), and a catch-up to the file sink ran ' +
  'at 1.43× the wal2json rate on a narrow table, 1.16× on the wide one (medians of three runs, docs/performance.md)';

export interface Finding {
  check: string;
  level: Level;
  message: string;
  /** The change to make: a postgresql.conf / pg_hba.conf line or SQL to run. */
  fix?: string;
}

export type RoleName = 'task' | 'etlContext' | 'eventStore';

/** One leaf table (an ordinary table or a partition) in a schema we look at. */
export interface TableFacts {
  /** schema.table of this leaf */
  table: string;
  /** schema.table of its partition root (itself when not a partition) */
  root: string;
  /** pg_class.relreplident: d default, n nothing, f full, i index */
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  hasPrimaryKey: boolean;
  canSelect: boolean;
}

export type Probe =
  | { status: 'ok' }
  | { status: 'error'; message: string; code?: string }
  | { status: 'skipped'; reason: string };

export interface DoctorFacts {
  serverVersion: string;
  database: string;
  role: { name: string; superuser: boolean; replication: boolean; createOnDb: boolean };
  settings: {
    walLevel: string;
    maxWalSenders: number;
    maxReplicationSlots: number;
    /** MB; -1 = unlimited */
    maxSlotWalKeepSizeMb: number;
    /** ms; 0 = never */
    walSenderTimeoutMs: number;
    /** null when the server does not know the setting (before 15.19) */
    outputPluginLibraries: string | null;
  };
  /** wal sender processes running before doctor connected its own */
  walSendersUsed: number;
  slotsUsed: number;
  /** the configured --slot, if it exists */
  slot: {
    name: string;
    plugin: string | null;
    slotType: string;
    database: string | null;
    walStatus: string | null;
    activePid: number | null;
    /** recorded in {{stateSchema}}.slots (created by tag-connector); null if that table does not exist */
    recorded: boolean | null;
  } | null;
  /** creating and dropping a temporary slot with --plugin */
  pluginProbe: Probe;
  /** a replication connection (replication=database) and IDENTIFY_SYSTEM: pg_hba + wal senders */
  replicationConnection: Probe;
  stateSchema: { name: string; exists: boolean; usage: boolean; create: boolean };
  trackedSchemas: { name: string; exists: boolean; usage: boolean }[];
  /** leaves of tracked tables only */
  tables: TableFacts[];
  roleTables: { role: RoleName; table: string }[];
  /** pgoutput only */
  publication: { name: string; exists: boolean; tables: string[] } | null;
  clock: { serverMs: number; localBeforeMs: number; localAfterMs: number };
}

export interface DoctorOptions {
  plugin: 'wal2json' | 'pgoutput';
  slot: string;
  publication: string;
  /** warn above this clock difference [2000] */
  clockSkewWarnMs?: number;
}

const q = (name: string) => '"' + name.replace(/"/g, '""') + '"';
const qt = (table: string) =>
  table
    .split('.')
    .map((p) => q(p))
    .join('.');
const mb = (v: number) => (v >= 1024 && v % 1024 === 0 ? `${v / 1024}GB` : `${v}MB`);

const ROLE_LABEL: Record<RoleName, string> = {
  task: 'task',
  etlContext: 'ETL context',
  eventStore: 'event store',
};

export function evaluate(f: DoctorFacts, o: DoctorOptions): Finding[] {
  const out: Finding[] = [];
  const role = f.role.name;
  const s = f.settings;

  out.push({
    check: 'server',
    level: 'ok',
    message: `PostgreSQL ${f.serverVersion}, database ${f.database}, role ${role}${f.role.superuser ? ' (superuser)' : ''}`,
  });

  // wal_level
  out.push(
    s.walLevel === 'logical'
      ? { check: 'wal_level', level: 'ok', message: 'wal_level = logical' }
      : {
          check: 'wal_level',
          level: 'fail',
          message: `wal_level is '${s.walLevel}', logical decoding needs 'logical'`,
          fix: 'wal_level = logical   # postgresql.conf, then restart PostgreSQL',
        },
  );

  // output_plugin_libraries (15.19+)
  if (s.outputPluginLibraries === null) {
    out.push({
      check: 'output_plugin_libraries',
      level: 'ok',
      message:
        'this server does not know output_plugin_libraries (before 15.19): every installed plugin is allowed. ' +
        'Do not put that setting in its postgresql.conf: an unknown setting stops the server from starting',
    });
  } else {
    const list = s.outputPluginLibraries
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    out.push(
      list.includes(o.plugin)
        ? {
            check: 'output_plugin_libraries',
            level: 'ok',
            message: `output_plugin_libraries = '${list.join(', ')}' includes ${o.plugin}`,
          }
        : {
            check: 'output_plugin_libraries',
            level: 'fail',
            message: `output_plugin_libraries = '${list.join(', ')}' does not include ${o.plugin}: the server refuses to decode with it`,
            fix:
              `output_plugin_libraries = '${[...list, o.plugin].join(', ')}'   # postgresql.conf, then reload` +
              (o.plugin === 'wal2json' ? ' (or run with --plugin pgoutput)' : ''),
          },
    );
  }

  // the plugin itself
  out.push(pluginFinding(f.pluginProbe, o.plugin));
  if (o.plugin === 'wal2json') out.push(PGOUTPUT_ADVICE);

  // replication connection
  const rc = f.replicationConnection;
  if (rc.status === 'ok') {
    out.push({
      check: 'replication_connection',
      level: 'ok',
      message: 'a replication connection (replication=database) is accepted',
    });
  } else if (rc.status === 'skipped') {
    out.push({ check: 'replication_connection', level: 'warn', message: `not tried: ${rc.reason}` });
  } else {
    const hba = /pg_hba\.conf/.test(rc.message);
    out.push({
      check: 'replication_connection',
      level: 'fail',
      message: `a replication connection is refused: ${rc.message}`,
      fix: hba
        ? `host  ${f.database}  ${role}  <client address>/32  scram-sha-256   # pg_hba.conf (a logical ` +
          `replication connection matches the database column, not 'replication'), then reload`
        : /max_wal_senders|too many|remaining connection slots/.test(rc.message)
          ? `max_wal_senders = ${s.maxWalSenders + 4}   # postgresql.conf, then restart`
          : undefined,
    });
  }

  // wal senders
  const freeSenders = s.maxWalSenders - f.walSendersUsed;
  out.push(
    freeSenders >= 1
      ? {
          check: 'max_wal_senders',
          level: 'ok',
          message: `${f.walSendersUsed} of max_wal_senders = ${s.maxWalSenders} in use (extract-tasks needs 1; standbys waiting for the lead need none)`,
        }
      : {
          check: 'max_wal_senders',
          level: 'fail',
          message: `all ${s.maxWalSenders} wal senders (max_wal_senders) are in use`,
          fix: `max_wal_senders = ${Math.max(10, f.walSendersUsed + 4)}   # postgresql.conf, then restart`,
        },
  );

  // replication slots
  const freeSlots = s.maxReplicationSlots - f.slotsUsed;
  if (f.slot) {
    out.push({
      check: 'max_replication_slots',
      level: 'ok',
      message: `slot ${f.slot.name} exists; ${f.slotsUsed} of max_replication_slots = ${s.maxReplicationSlots} in use`,
    });
  } else if (freeSlots >= 1) {
    out.push({
      check: 'max_replication_slots',
      level: 'ok',
      message: `${f.slotsUsed} of max_replication_slots = ${s.maxReplicationSlots} in use; slot ${o.slot} will be created on first start`,
    });
  } else {
    out.push({
      check: 'max_replication_slots',
      level: 'fail',
      message: errors.noFreeSlot(s.maxReplicationSlots).message,
      fix: `max_replication_slots = ${f.slotsUsed + 4}   # postgresql.conf, then restart`,
    });
  }
  if (f.slot) out.push(...slotFindings(f, o));

  // WAL retention
  if (s.maxSlotWalKeepSizeMb < 0) {
    out.push({
      check: 'max_slot_wal_keep_size',
      level: 'warn',
      message:
        'max_slot_wal_keep_size = -1 (unlimited): while tag-connector is down or its sinks are stuck, the slot keeps ' +
        'every WAL segment and can fill the disk and stop the whole server',
      fix:
        "max_slot_wal_keep_size = '50GB'   # postgresql.conf, then reload; size it to the WAL written during the " +
        'longest outage you want to survive (WAL bytes/hour x hours), below the free space of pg_wal',
    });
  } else if (s.maxSlotWalKeepSizeMb < 1024) {
    out.push({
      check: 'max_slot_wal_keep_size',
      level: 'warn',
      message:
        `max_slot_wal_keep_size = ${mb(s.maxSlotWalKeepSizeMb)} is small: a short sink outage can invalidate the ` +
        'slot (E_SLOT_INVALIDATED), which needs a re-snapshot to recover',
      fix: "max_slot_wal_keep_size = '50GB'   # postgresql.conf, then reload (size: WAL bytes/hour x hours of outage)",
    });
  } else {
    out.push({
      check: 'max_slot_wal_keep_size',
      level: 'ok',
      message: `max_slot_wal_keep_size = ${mb(s.maxSlotWalKeepSizeMb)}: a slot lagging further is invalidated instead of filling the disk`,
    });
  }

  // wal_sender_timeout
  out.push(
    s.walSenderTimeoutMs === 0
      ? {
          check: 'wal_sender_timeout',
          level: 'warn',
          message:
            'wal_sender_timeout = 0: a reader lost on the network keeps the slot active forever, so no other process can take it over',
          fix: "wal_sender_timeout = '60s'   # postgresql.conf, then reload",
        }
      : {
          check: 'wal_sender_timeout',
          level: 'ok',
          message: `wal_sender_timeout = ${s.walSenderTimeoutMs / 1000}s`,
        },
  );

  out.push(...privilegeFindings(f));
  out.push(...replicaIdentityFindings(f, o));
  if (o.plugin === 'pgoutput') out.push(...publicationFindings(f, o));
  out.push(clockFinding(f, o.clockSkewWarnMs ?? 2000));
  return out;
}

/**
 * wal2json stays the default (the seed's deployments run it), but pgoutput is the faster path, measured
 * in bench/ (docs/performance.md): no JSON printed on the server and read back, fewer bytes, and a
 * decoder that splices the values' text into the event as the wal2json scanner does.
 */
const PGOUTPUT_ADVICE: Finding = {
  check: 'plugin choice',
  level: 'ok',
  message: PGOUTPUT_MEASURED,
  fix: '--plugin pgoutput   # the publication (--publication) is created if missing; works without output_plugin_libraries changes',
};

function pluginFinding(p: Probe, plugin: string): Finding {
  if (p.status === 'ok')
    return {
      check: 'plugin',
      level: 'ok',
      message: `${plugin} works: a temporary slot was created with it and dropped`,
    };
  if (p.status === 'skipped')
    return { check: 'plugin', level: 'warn', message: `${plugin} not probed: ${p.reason}` };
  if (/may not be used as an output plugin/.test(p.message)) {
    const e = errors.pluginNotAllowed(plugin);
    return {
      check: 'plugin',
      level: 'fail',
      message: `[${e.code}] ${e.message}`,
      fix: `output_plugin_libraries = 'pgoutput, test_decoding, ${plugin}'   # postgresql.conf, then reload`,
    };
  }
  if (p.code === '58P01' || /could not access file/.test(p.message)) {
    const e = errors.pluginMissing(plugin);
    return {
      check: 'plugin',
      level: 'fail',
      message: `[${e.code}] ${e.message}`,
      fix:
        plugin === 'wal2json'
          ? 'apt-get install postgresql-<major>-wal2json   # on the database host; or --plugin pgoutput'
          : undefined,
    };
  }
  if (p.code === '57014' || /statement timeout|canceling statement/.test(p.message)) {
    return {
      check: 'plugin',
      level: 'warn',
      message:
        `${plugin} not probed: creating a temporary slot timed out, it waits for transactions running at that ` +
        'moment to end (a long-running or idle-in-transaction session?). The first start of extract-tasks will wait the same way',
      fix: "SELECT pid, state, xact_start, query FROM pg_stat_activity WHERE xact_start < now() - interval '1 minute';",
    };
  }
  return {
    check: 'plugin',
    level: 'fail',
    message: `creating a temporary ${plugin} slot failed: ${p.message}`,
  };
}

function slotFindings(f: DoctorFacts, o: DoctorOptions): Finding[] {
  const sl = f.slot!;
  const out: Finding[] = [];
  if (sl.slotType !== 'logical') {
    return [
      {
        check: 'slot',
        level: 'fail',
        message: `slot ${sl.name} is a ${sl.slotType} slot, not a logical one`,
        fix: `run with another --slot (or, if it is unused: SELECT pg_drop_replication_slot('${sl.name}');)`,
      },
    ];
  }
  if (sl.database !== f.database) {
    const e = errors.slotOtherDatabase(sl.name, sl.database ?? '?');
    return [{ check: 'slot', level: 'fail', message: `[${e.code}] ${e.message}` }];
  }
  if (sl.plugin !== o.plugin) {
    const e = errors.slotPluginMismatch(sl.name, sl.plugin ?? '?', o.plugin);
    out.push({
      check: 'slot',
      level: 'fail',
      message: `[${e.code}] ${e.message}`,
      fix: `--plugin ${sl.plugin}`,
    });
  }
  if (sl.walStatus === 'lost') {
    const e = errors.slotInvalidated(sl.name, 'lost');
    out.push({
      check: 'slot',
      level: 'fail',
      message: `[${e.code}] ${e.message}`,
      fix: `tag-connector slot drop --slot ${sl.name}   # after taking the snapshot (step 1)`,
    });
  } else if (sl.walStatus === 'unreserved') {
    out.push({
      check: 'slot',
      level: 'warn',
      message:
        `slot ${sl.name} has wal_status = unreserved: it lags by more than max_slot_wal_keep_size and will be ` +
        'invalidated at the next checkpoint unless it catches up now',
      fix: `tag-connector slot status --slot ${sl.name}   # and get extract-tasks streaming again`,
    });
  }
  if (out.length === 0) {
    const notes = [
      `wal_status = ${sl.walStatus ?? 'unknown'}`,
      sl.activePid ? `in use by pid ${sl.activePid}` : 'not in use',
      sl.recorded === true
        ? 'created by tag-connector'
        : 'not created by tag-connector: slot drop/advance need --force',
    ];
    out.push({ check: 'slot', level: 'ok', message: `slot ${sl.name} (${sl.plugin}): ${notes.join(', ')}` });
  }
  return out;
}

function privilegeFindings(f: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const role = f.role.name;
  if (f.role.superuser || f.role.replication) {
    out.push({
      check: 'privilege:replication',
      level: 'ok',
      message: `role ${role} may use replication${f.role.superuser ? ' (superuser: consider a least-privilege role, postgres-conf/init.sql)' : ''}`,
    });
  } else {
    const e = errors.privilege(role);
    out.push({
      check: 'privilege:replication',
      level: 'fail',
      message: `[${e.code}] ${e.message}`,
      fix: `ALTER ROLE ${q(role)} WITH REPLICATION;`,
    });
  }
  // migrations run CREATE SCHEMA IF NOT EXISTS, which checks CREATE on the database even if the schema exists
  out.push(
    f.role.createOnDb
      ? {
          check: 'privilege:create',
          level: 'ok',
          message: `role ${role} has CREATE on database ${f.database} (state schema ${f.stateSchema.name}, pg-boss schema)`,
        }
      : {
          check: 'privilege:create',
          level: 'fail',
          message: `role ${role} lacks CREATE on database ${f.database}: the state schema migrations (CREATE SCHEMA IF NOT EXISTS ${f.stateSchema.name}) will fail`,
          fix: `GRANT CREATE ON DATABASE ${q(f.database)} TO ${q(role)};`,
        },
  );
  const st = f.stateSchema;
  if (st.exists && !(st.usage && st.create)) {
    out.push({
      check: 'privilege:state_schema',
      level: 'fail',
      message: `role ${role} lacks ${[!st.usage && 'USAGE', !st.create && 'CREATE'].filter(Boolean).join(' and ')} on the state schema ${st.name}`,
      fix: `ALTER SCHEMA ${q(st.name)} OWNER TO ${q(role)};   -- or: GRANT USAGE, CREATE ON SCHEMA ${q(st.name)} TO ${q(role)};`,
    });
  }
  for (const sc of f.trackedSchemas) {
    if (!sc.exists) {
      out.push({
        check: `schema:${sc.name}`,
        level: 'warn',
        message: `tracked schema ${sc.name} does not exist`,
      });
    } else if (!sc.usage) {
      out.push({
        check: `schema:${sc.name}`,
        level: 'warn',
        message: `role ${role} lacks USAGE on tracked schema ${sc.name} (snapshots and initial sync read its tables)`,
        fix: `GRANT USAGE ON SCHEMA ${q(sc.name)} TO ${q(role)};`,
      });
    }
  }
  const noSelectRoots = [...new Set(f.tables.filter((t) => !t.canSelect).map((t) => t.root))];
  if (noSelectRoots.length) {
    out.push({
      check: 'privilege:select',
      level: 'warn',
      message:
        `role ${role} cannot SELECT ${noSelectRoots.length} tracked table(s): ${list(noSelectRoots)} ` +
        '(decoding does not need it; /v1/api/ws/Snapshot and the initial sync do)',
      fix: [
        ...new Set(
          noSelectRoots.map(
            (t) => `GRANT SELECT ON ALL TABLES IN SCHEMA ${q(t.split('.')[0]!)} TO ${q(role)};`,
          ),
        ),
      ].join('\n'),
    });
  }
  return out;
}

function replicaIdentityFindings(f: DoctorFacts, o: DoctorOptions): Finding[] {
  const out: Finding[] = [];
  const byRoot = new Map<string, TableFacts[]>();
  for (const t of f.tables) byRoot.set(t.root, [...(byRoot.get(t.root) ?? []), t]);
  const roleOf = new Map(f.roleTables.map((r) => [r.table, r.role]));

  for (const r of f.roleTables) {
    const leaves = byRoot.get(r.table);
    if (!leaves) {
      out.push({
        check: `replica_identity:${r.table}`,
        level: 'warn',
        message: `${ROLE_LABEL[r.role]} table ${r.table} does not exist yet`,
        fix:
          r.role === 'task'
            ? 'start start-job once (pg-boss creates its tables), or set the task role / --preset none'
            : 'tag-connector migrate',
      });
      continue;
    }
    const notFull = leaves.filter((t) => t.replicaIdentity !== 'f');
    out.push(
      notFull.length === 0
        ? {
            check: `replica_identity:${r.table}`,
            level: 'ok',
            message: `${ROLE_LABEL[r.role]} table ${r.table}: REPLICA IDENTITY FULL${leaves.length > 1 ? ` on all ${leaves.length} partitions` : ''}`,
          }
        : {
            check: `replica_identity:${r.table}`,
            level: 'warn',
            message:
              `${ROLE_LABEL[r.role]} table ${r.table}: ${notFull.length} of ${leaves.length} table(s)/partition(s) ` +
              'lack REPLICA IDENTITY FULL, so updates and deletes carry no old row: no from/to in status_changed, ' +
              'unchanged TOAST values marked instead of filled in',
            fix: alterFull(notFull.map((t) => t.table)),
          },
    );
  }

  const broken: string[] = [];
  let fine = 0;
  for (const [root, leaves] of byRoot) {
    if (roleOf.has(root)) continue;
    const bad = leaves.filter(
      (t) => t.replicaIdentity === 'n' || (t.replicaIdentity === 'd' && !t.hasPrimaryKey),
    );
    if (bad.length) broken.push(...bad.map((t) => t.table));
    else fine++;
  }
  if (broken.length) {
    out.push({
      check: 'replica_identity',
      level: o.plugin === 'pgoutput' ? 'fail' : 'warn',
      message:
        `${broken.length} tracked table(s) have no replica identity (no primary key, or REPLICA IDENTITY NOTHING): ${list(broken)}. ` +
        (o.plugin === 'pgoutput'
          ? 'In a publication, UPDATE and DELETE on them fail in the application'
          : 'wal2json leaves their updates and deletes out of the stream, and the daemon stops at the first (E_CHANGE_LEFT_OUT)'),
      fix: `add a primary key, or:\n${alterFull(broken)}`,
    });
  }
  if (f.tables.length === 0) {
    out.push({
      check: 'replica_identity',
      level: 'warn',
      message: 'no tracked table exists (check --schemas, --tables, --preset)',
    });
  } else if (fine > 0) {
    out.push({
      check: 'replica_identity',
      level: 'ok',
      message: `${fine} other tracked table(s) have a usable replica identity (primary key, index or FULL)`,
    });
  }
  return out;
}

function publicationFindings(f: DoctorFacts, o: DoctorOptions): Finding[] {
  const p = f.publication;
  if (!p) return [];
  const roots = [...new Set(f.tables.map((t) => t.root))];
  const schemas = f.trackedSchemas.filter((s) => s.exists).map((s) => q(s.name));
  if (!p.exists) {
    if (f.role.superuser)
      return [
        {
          check: 'publication',
          level: 'ok',
          message: `publication ${o.publication} does not exist; extract-tasks creates it on first start`,
        },
      ];
    const extra = f.roleTables
      .map((r) => r.table)
      .filter((t) => roots.includes(t) && !schemas.includes(q(t.split('.')[0]!)));
    const parts = [
      schemas.length ? `TABLES IN SCHEMA ${schemas.join(', ')}` : '',
      extra.length ? `TABLE ${extra.map(qt).join(', ')}` : '',
    ].filter(Boolean);
    return [
      {
        check: 'publication',
        level: 'fail',
        message:
          `publication ${o.publication} does not exist and role ${f.role.name} cannot create it ` +
          '(FOR TABLES IN SCHEMA needs a superuser, FOR TABLE needs ownership of each table)',
        fix: `-- as a superuser:\nCREATE PUBLICATION ${q(o.publication)} FOR ${parts.join(', ') || 'TABLE <schema.table>, ...'} WITH (publish_via_partition_root = true);`,
      },
    ];
  }
  const missing = roots.filter((t) => !p.tables.includes(t));
  return [
    missing.length
      ? {
          check: 'publication',
          level: 'warn',
          message: `publication ${o.publication} lacks ${missing.length} tracked table(s): ${list(missing)}; their changes are not streamed`,
          fix: `ALTER PUBLICATION ${q(o.publication)} ADD TABLE ${missing.map(qt).join(', ')};`,
        }
      : {
          check: 'publication',
          level: 'ok',
          message: `publication ${o.publication} covers every tracked table`,
        },
  ];
}

function clockFinding(f: DoctorFacts, warnMs: number): Finding {
  const { serverMs, localBeforeMs, localAfterMs } = f.clock;
  const skew = Math.round(serverMs - (localBeforeMs + localAfterMs) / 2);
  const uncertainty = Math.round((localAfterMs - localBeforeMs) / 2);
  const msg = `clock difference to the server ${skew >= 0 ? '+' : ''}${skew} ms (±${uncertainty} ms)`;
  return Math.abs(skew) - uncertainty > warnMs
    ? {
        check: 'clock',
        level: 'warn',
        message: `${msg}: event times are the server's commit times, lag and latency metrics compare them with this clock`,
        fix: 'synchronise both clocks with NTP (chrony or systemd-timesyncd)',
      }
    : { check: 'clock', level: 'ok', message: msg };
}

function alterFull(tables: string[]): string {
  const shown = tables.slice(0, 20).map((t) => `ALTER TABLE ${qt(t)} REPLICA IDENTITY FULL;`);
  if (tables.length > 20) shown.push(`-- ... and ${tables.length - 20} more`);
  return shown.join('\n');
}

function list(items: string[], max = 10): string {
  return items.length > max
    ? `${items.slice(0, max).join(', ')}, ... (${items.length - max} more)`
    : items.join(', ');
}

export function exitCode(findings: Finding[]): number {
  return findings.some((x) => x.level === 'fail') ? 1 : 0;
}

/** Human output: one line per finding, the fix indented under it, a summary line. */
export function formatFindings(findings: Finding[]): string {
  const lines: string[] = [];
  for (const x of findings) {
    lines.push(`${`[${x.level}]`.padEnd(7)}${x.check}: ${x.message}`);
    if (x.fix && x.level !== 'ok') for (const l of x.fix.split('\n')) lines.push(`       fix: ${l}`);
  }
  const n = (l: Level) => findings.filter((x) => x.level === l).length;
  lines.push(`${n('fail')} failed, ${n('warn')} warnings, ${n('ok')} ok`);
  return lines.join('\n') + '\n';
}
