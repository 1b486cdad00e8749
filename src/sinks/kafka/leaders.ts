import type { Admin } from '@platformatic/kafka';

/**
 * Waits until every partition of `topics` has a leader. A topic just created has none for a moment,
 * and a produce to it then fails with NOT_LEADER_OR_FOLLOWER: the first write after open() failed so
 * in a CI run under load. The runner would retry it, but a sink used directly (start-job's publisher,
 * `tail` tests) would not, and an open() that returns should mean the sink can take a write.
 */
export async function waitForLeaders(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  if (topics.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { topics: found } = await admin.metadata({ topics, forceUpdate: true });
    const leaderless = topics.filter((t) => {
      const m = found.get(t);
      return !m || m.partitions.length === 0 || m.partitions.some((p) => p.leader < 0);
    });
    if (leaderless.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `no partition leader for ${leaderless.join(', ')} within ${timeoutMs} ms of creating it`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}
