export { assertSameServer, checkpointIdentity } from './checkpoint-identity.ts';
export { Connection } from './connection.ts';
export { LagHistory } from './lag-history.ts';
export { LeaderLock } from './leader-lock.ts';
export { PgReplicationSource, type ReplicationSource } from './replication-source.ts';
export { identifyServer, readServerState } from './server-identity.ts';
export { startSlotMonitor } from './slot-monitor.ts';
export { checkPluginAllowed, ensurePublication, ensureSlot, preflight } from './slot.ts';
