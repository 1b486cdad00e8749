import pg from 'pg';
import { pgClientConfig, type Config } from '../config/index.ts';
import { EXIT } from '../errors.ts';
import { doctor } from './doctor-facts.ts';
import { formatFindings } from './doctor.ts';
import { isLsnText } from '../util/lsn.ts';
import { advanceSlot, dropSlot, formatStatus, slotErrors, slotStatus } from './slot.ts';

/** Bodies of the operator commands (the yargs modules in src/cli/commands stay thin). */

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');

export async function runDoctor(config: Config, json: boolean): Promise<number> {
  const result = await doctor(config);
  out(
    json
      ? JSON.stringify({ ok: result.exitCode === 0, findings: result.findings }, null, 2)
      : formatFindings(result.findings),
  );
  return result.exitCode;
}

async function withClient<T>(config: Config, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...pgClientConfig(config), application_name: 'tag-connector slot' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Exit 0; 1 if the slot does not exist; 3 (as the daemon) if a slot shown is invalidated. */
export async function runSlotStatus(config: Config, o: { all: boolean; json: boolean }): Promise<number> {
  return withClient(config, async (c) => {
    const slots = await slotStatus(c, {
      stateSchema: config.stateSchema,
      slot: o.all ? undefined : config.slot,
    });
    if (!o.all && slots.length === 0) throw slotErrors.notFound(config.slot);
    if (o.json) out(JSON.stringify(o.all ? slots : slots[0], null, 2));
    else out(slots.length ? formatStatus(slots) : 'no replication slots on this server');
    return slots.some((s) => s.walStatus === 'lost') ? EXIT.slotLost : 0;
  });
}

export async function runSlotDrop(config: Config, o: { force: boolean; json: boolean }): Promise<number> {
  return withClient(config, async (c) => {
    const r = await dropSlot(c, { stateSchema: config.stateSchema, slot: config.slot, force: o.force });
    if (o.json) out(JSON.stringify(r));
    else
      out(
        `dropped replication slot ${r.slot} (${r.plugin}, was at ${r.confirmedFlushLsn ?? 'unknown'}). ` +
          `extract-tasks creates a new one at the current end of WAL on its next start; changes in between ` +
          `are not streamed: resume from a snapshot (GET /v1/api/ws/Snapshot).`,
      );
    return 0;
  });
}

export async function runSlotAdvance(
  config: Config,
  o: { to: string; force: boolean; json: boolean },
): Promise<number> {
  // a malformed --to is a usage error (exit 2), reported before connecting
  if (o.to.trim().toLowerCase() !== 'current' && !isLsnText(o.to.trim())) throw slotErrors.badTarget(o.to);
  return withClient(config, async (c) => {
    const r = await advanceSlot(c, {
      stateSchema: config.stateSchema,
      slot: config.slot,
      to: o.to,
      force: o.force,
    });
    if (o.json) out(JSON.stringify(r));
    else
      out(
        `advanced replication slot ${r.slot} from ${r.from ?? 'unknown'} to ${r.to}` +
          (r.skippedBytes !== null
            ? ` (${r.skippedBytes} bytes of WAL skipped: those changes are not delivered)`
            : ''),
      );
    return 0;
  });
}
