import type { CloudEvent } from '../../src/events/envelope.ts';
import { outboundEvent, type OutboundEvent } from '../../src/sinks/sink.ts';
import { formatLsn } from '../../src/util/lsn.ts';

/**
 * Synthetic events for sink tests: event `i` belongs to transaction floor(i / perTx) (commit LSN
 * base + 0x100 * tx) with seq i % perTx, and to partition key `k<i % keys>`.
 */
export function makeEvent(
  i: number,
  { perTx = 3, keys = 7, base = 0x1000000n, table = 'tasks' } = {},
): OutboundEvent {
  const commitLsn = base + BigInt(Math.floor(i / perTx)) * 0x100n;
  const seq = i % perTx;
  const commit = formatLsn(commitLsn);
  const key = `k${i % keys}`;
  const event: CloudEvent = {
    specversion: '1.0',
    id: `${commit}/${seq}`,
    source: '/tag-connector/testdb/test_slot',
    type: 'task.updated',
    subject: `tasks/${key}`,
    time: new Date(1700000000000 + i).toISOString(),
    datacontenttype: 'application/json',
    lsn: formatLsn(commitLsn - 0x10n + BigInt(seq)),
    commitlsn: commit,
    xid: 1000 + Math.floor(i / perTx),
    partitionkey: key,
    data: {
      op: 'u',
      schema: 'public',
      table,
      before: i < keys ? null : { id: key, n: i - keys },
      after: { id: key, n: i },
      changed: ['n'],
    },
  };
  return outboundEvent(event, i, { commitLsn, seq }, `public.${table}`);
}

export function makeEvents(
  from: number,
  count: number,
  opts?: Parameters<typeof makeEvent>[1],
): OutboundEvent[] {
  return Array.from({ length: count }, (_, k) => makeEvent(from + k, opts));
}
