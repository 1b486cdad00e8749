/** The shapes of the API answers the console reads (GET /info, /v1/api/slot/lag-history). */
export interface SinkInfo {
  name: string;
  state: string;
  checkpoint: string | null;
  checkpointLsn: string | null;
  delivered: number;
  skipped: number;
  retries?: number;
  queued: number;
  lastError: string | null;
}

export interface Info {
  version: string;
  uptimeSeconds: number;
  database: string;
  slot: string;
  plugin: string;
  publication: string | null;
  state: string;
  role?: string;
  confirmedLsn: string | null;
  receivedLsn: string | null;
  inFlight: { events?: number; bytes?: number } | number | null;
  lagBytes: number | null;
  walStatus: string | null;
  safeWalSize: number | null;
  sinks: SinkInfo[];
}

export interface LagHistory {
  slot: string;
  windowSeconds: number;
  samples: { t: number; lagBytes: number }[];
}
