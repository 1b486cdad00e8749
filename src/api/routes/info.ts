import type { FastifyInstance } from 'fastify';
import { formatLsn, formatPosition } from '../../util/lsn.ts';
import { versionInfo } from '../../version.ts';
import type { AppDeps } from '../app.ts';

export async function infoRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { extractor, config } = deps;
  const startedAt = Date.now();
  app.get('/info', { config: { role: 'admin' } }, async () => {
    const p = extractor.pipeline;
    let slot: Record<string, unknown> | null = null;
    try {
      const { rows } = await extractor.pool.query(
        `SELECT slot_name, plugin, active, active_pid, confirmed_flush_lsn::text AS confirmed_flush_lsn,
                restart_lsn::text AS restart_lsn, wal_status, safe_wal_size::text AS safe_wal_size,
                (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag_bytes
           FROM pg_replication_slots WHERE slot_name = $1`,
        [config.slot],
      );
      slot = rows[0] ?? null;
    } catch (err) {
      slot = { error: (err as Error).message };
    }
    const backfills = extractor.backfills
      ? await extractor.backfills.list(20).catch((err: Error) => ({ error: err.message }))
      : null;
    return {
      ...versionInfo(),
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      database: extractor.database,
      slot: config.slot,
      plugin: config.plugin,
      publication: config.plugin === 'pgoutput' ? config.publication : null,
      state: p?.state ?? (extractor.standby ? 'standby' : 'starting'),
      role: p ? 'leader' : extractor.standby ? 'standby' : 'starting',
      tracked: {
        schemas: extractor.filter.schemaList(),
        tables: extractor.filter.explicitList(),
        roleTables: extractor.filter.roleTableList(),
      },
      confirmedLsn: p ? formatLsn(p.confirmedLsn()) : null,
      receivedLsn: p?.receivedLsn() ?? null,
      inFlight: p?.inFlight() ?? null,
      counts: p?.counts ?? null,
      lagBytes: slot && typeof slot.lag_bytes === 'string' ? Number(slot.lag_bytes) : null,
      walStatus: slot?.wal_status ?? null,
      safeWalSize: slot?.safe_wal_size != null ? Number(slot.safe_wal_size) : null,
      slotDetail: slot,
      sinks: extractor.runners.map((r) => {
        const s = r.getStatus();
        return {
          name: r.name,
          state: s.state,
          checkpoint: s.checkpoint ? formatPosition(s.checkpoint) : null,
          checkpointLsn: s.checkpoint ? formatLsn(s.checkpoint.commitLsn) : null,
          delivered: s.delivered,
          skipped: s.skipped,
          retries: s.retries,
          queued: r.queued(),
          lastError: s.lastError ?? null,
        };
      }),
      backfills,
      config: config.shown,
    };
  });
}
