import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { kafkaHome } from './kafka.ts';

const JAVA_PARTITIONER = new URL('./kafka/JavaPartitioner.java', import.meta.url).pathname;

/**
 * The Apache Kafka Java client's answer for each key (the broker's own kafka-clients jar, run by the
 * machine's java): Utils.murmur2, and the partition its built-in partitioner picks for 1..max
 * partitions (`partitions[n - 1]`). An oracle that shares no code with ours or @platformatic/kafka.
 */
export function javaPartitions(keys: Buffer[], max: number): { hash: number; partitions: number[] }[] {
  const libs = join(kafkaHome(), 'libs');
  if (!existsSync(libs))
    throw new Error(`Kafka jars not found in ${libs}: run script/bootstrap (needs java and mvn)`);
  const r = spawnSync('java', ['-cp', `${libs}/*`, JAVA_PARTITIONER, String(max)], {
    input: keys.map((k) => k.toString('hex')).join('\n') + '\n',
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`java failed (${r.status}): ${r.error?.message ?? ''} ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const [hash, ...partitions] = l.split(' ').map(Number);
      return { hash: hash!, partitions };
    });
}
