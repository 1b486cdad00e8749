/** @services kafka */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { murmur2, partitionOf } from '../../src/sinks/kafka/index.ts';
import { javaPartitions } from '../support/kafka-java.ts';

const MAX_PARTITIONS = 12;

describe('keyed records land where the Java client puts them', () => {
  it('murmur2 and partitionOf agree with the Java client for every tail length and 1..12 partitions', () => {
    const keys = [
      ...Array.from({ length: 3000 }, (_, i) => randomBytes(i % 67)),
      ...['42', 'task:7f3a-42', '0/16B3748/3', 'etl_context-9', 'é'].map((s) => Buffer.from(s)),
    ];
    const java = javaPartitions(keys, MAX_PARTITIONS);
    expect(java).toHaveLength(keys.length);
    const hashes: string[] = [];
    const partitions: string[] = [];
    keys.forEach((k, i) => {
      // A key inside a larger buffer, as the sink hashes it in place.
      const framed = Buffer.concat([Buffer.from('xx'), k, Buffer.from('yy')]);
      if (murmur2(framed, 2, 2 + k.length) !== java[i]!.hash) hashes.push(k.toString('hex'));
      for (let n = 1; n <= MAX_PARTITIONS; n++)
        if (partitionOf(framed, 2, 2 + k.length, n) !== java[i]!.partitions[n - 1])
          partitions.push(`${k.toString('hex')} of ${n}`);
    });
    expect(hashes).toEqual([]);
    expect(partitions.slice(0, 10)).toEqual([]);
  }, 180_000);
});
