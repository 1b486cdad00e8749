import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one daemon (one registry per process, so tests can build several). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tag_connector_process_' });
  return {
    registry,
    events: new Counter({
      name: 'tag_connector_events_total',
      help: 'Events produced, by table and type',
      labelNames: ['table', 'type'] as const,
      registers: [registry],
    }),
    changes: new Counter({
      name: 'tag_connector_changes_total',
      help: 'Decoded messages',
      registers: [registry],
    }),
    transactions: new Counter({
      name: 'tag_connector_transactions_total',
      help: 'Committed transactions seen',
      registers: [registry],
    }),
    sinkEvents: new Counter({
      name: 'tag_connector_sink_events_total',
      help: 'Events durably delivered, by sink',
      labelNames: ['sink'] as const,
      registers: [registry],
    }),
    sinkLatency: new Histogram({
      name: 'tag_connector_sink_batch_seconds',
      help: 'Time for a sink to make a batch durable',
      labelNames: ['sink'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    commitToAck: new Histogram({
      name: 'tag_connector_commit_to_ack_seconds',
      help: 'Commit time to sink acknowledgement, once per transaction and acknowledged batch, by sink',
      labelNames: ['sink'] as const,
      buckets: [
        0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
        1, 2.5, 5, 30,
      ],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'tag_connector_inflight_events',
      help: 'Events not yet durable in every sink',
      registers: [registry],
    }),
    inFlightBytes: new Gauge({
      name: 'tag_connector_inflight_bytes',
      help: 'Bytes of events not yet durable everywhere',
      registers: [registry],
    }),
    paused: new Gauge({
      name: 'tag_connector_replication_paused',
      help: '1 while backpressure pauses the stream',
      registers: [registry],
    }),
    lagBytes: new Gauge({
      name: 'tag_connector_slot_lag_bytes',
      help: 'pg_current_wal_lsn() - confirmed_flush_lsn',
      registers: [registry],
    }),
    safeWalBytes: new Gauge({
      name: 'tag_connector_slot_safe_wal_size_bytes',
      help: 'Slot safe_wal_size (-1 = unlimited)',
      registers: [registry],
    }),
    lagWarning: new Gauge({
      name: 'tag_connector_slot_lag_warning',
      help: '1 when slot lag exceeds --lag-warn-bytes',
      registers: [registry],
    }),
    confirmedLsn: new Gauge({
      name: 'tag_connector_confirmed_lsn',
      help: 'Confirmed flush LSN (as a number)',
      registers: [registry],
    }),
    reconnects: new Counter({
      name: 'tag_connector_reconnects_total',
      help: 'Replication reconnects',
      registers: [registry],
    }),
    errors: new Counter({
      name: 'tag_connector_errors_total',
      help: 'Errors, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'tag_connector_leader',
      help: "1 while this daemon holds the slot's leader lock and streams; 0 on a standby",
      registers: [registry],
    }),
    sinkRetries: new Counter({
      name: 'tag_connector_sink_retries_total',
      help: 'Failed sink writes that were retried, by sink',
      labelNames: ['sink'] as const,
      registers: [registry],
    }),
    sinkFailing: new Gauge({
      name: 'tag_connector_sink_failing',
      help: '1 while a sink retries a failed write or has given up, by sink',
      labelNames: ['sink'] as const,
      registers: [registry],
    }),
    streamResumeExpired: new Counter({
      name: 'tag_connector_stream_resume_expired_total',
      help: 'Stream clients refused because their resume point is older than the stream retention',
      registers: [registry],
    }),
    backfillRows: new Counter({
      name: 'tag_connector_backfill_rows_total',
      help: 'Rows a backfill emitted as read events, by table',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    backfillRemaining: new Gauge({
      name: 'tag_connector_backfill_remaining_estimate',
      help: 'Rows running backfills still have to read, by pg_class.reltuples',
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'tag_connector_dead_letters_total',
      help: 'Events sent to the dead-letter route, by the sink that rejected them (governance: a rule failed)',
      labelNames: ['sink'] as const,
      registers: [registry],
    }),
    streamClients: new Gauge({
      name: 'tag_connector_stream_clients',
      help: 'Connected Stream clients',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
