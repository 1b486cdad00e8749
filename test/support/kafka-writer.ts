// A sink process for crash tests: opens a KafkaSink (exactly-once), resumes after its checkpoint and
// writes synthetic events [checkpoint+1, to) in batches, printing `committed <index>` after each commit.
//   node test/support/kafka-writer.ts BROKERS SLOT TOPIC CHECKPOINT_TOPIC TO BATCH
import { KafkaSink } from '../../src/sinks/kafka/index.ts';
import { makeEvents } from './events.ts';

const [brokers, slot, topic, checkpointTopic, to, batch] = process.argv.slice(2);
const sink = new KafkaSink({
  brokers: [brokers!],
  slot: slot!,
  topic: topic!,
  routes: {},
  checkpointTopic: checkpointTopic!,
  exactlyOnce: true,
  envelope: 'structured',
  partitions: 3,
  replicationFactor: 1,
  clientId: 'tagc-test',
  database: 'testdb',
  version: 'test',
});
const cp = await sink.open();
// makeEvent: index = tx * 3 + seq, commitLsn = 0x1000000 + 0x100 * tx
let next = cp ? Number((cp.commitLsn - 0x1000000n) / 0x100n) * 3 + cp.seq + 1 : 0;
process.stdout.write(`start ${next}\n`);
const end = Number(to);
const size = Number(batch);
while (next < end) {
  const n = Math.min(size, end - next);
  await sink.write(makeEvents(next, n));
  next += n;
  process.stdout.write(`committed ${next - 1}\n`);
}
await sink.close();
process.stdout.write('done\n');
