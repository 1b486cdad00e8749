import {
  FetchIsolationLevels,
  fetchV13,
  fetchV14,
  fetchV15,
  fetchV16,
  fetchV17,
  type Consumer,
} from '@platformatic/kafka';

/**
 * A read_committed Fetch request sent on the client's connection but NOT through `Consumer.fetch`:
 * @platformatic/kafka 2.12's `fetch` runs its own aborted-transaction filter over the response before
 * handing it back, and that filter drops committed batches. Per producer id it drops every batch from
 * the first offset of the LAST aborted transaction listed up to the LAST ABORT marker of that producer
 * in the response; an ABORT marker with no aborted-transaction entry (a partition added to a
 * transaction that then wrote nothing to it, e.g. a daemon killed between AddPartitionsToTxn and its
 * Produce request) stretches that range over the committed transactions in between. Under the soak
 * (one transactional id, so one producer id) it hid 62,018 of 222,852 events and, in the checkpoint
 * topic, committed checkpoints (docs/soak.md). Our filter (txn.ts) must see the batches as the broker
 * sent them.
 */

/** The Fetch versions that name topics by id, newest first: the broker's newest one of them is used. */
const BY_TOPIC_ID = [fetchV17.api, fetchV16.api, fetchV15.api, fetchV14.api, fetchV13.api] as const;
const FETCH_API_KEY = 1;
const OFFSET_OUT_OF_RANGE = 1;

export type FetchResponse = fetchV17.FetchResponse;
export type FetchRequestTopic = fetchV17.FetchRequestTopic;
type FetchApi = (typeof BY_TOPIC_ID)[number];

export async function fetchApiFor(client: Consumer<Buffer, Buffer, Buffer, Buffer>): Promise<FetchApi> {
  const fetch = (await client.listApis()).find((a) => a.apiKey === FETCH_API_KEY);
  const api =
    fetch && BY_TOPIC_ID.find((a) => a.version >= fetch.minVersion && a.version <= fetch.maxVersion);
  if (!api) {
    throw new Error(
      `the Kafka broker speaks Fetch v${fetch?.minVersion ?? '?'}-v${fetch?.maxVersion ?? '?'}: ` +
        'read_committed reads need v13 or newer (Kafka 3.1+)',
    );
  }
  return api;
}

/**
 * One sessionless (session id 0, epoch -1: every partition asked for is answered) read_committed Fetch
 * to `node`. A partition whose offset is out of range comes back with its error code (the caller moves
 * to the log start); any other error is thrown.
 */
export async function fetchCommitted(
  client: Consumer<Buffer, Buffer, Buffer, Buffer>,
  api: FetchApi,
  node: number,
  topics: FetchRequestTopic[],
  { maxWaitTime, maxBytes }: { maxWaitTime: number; maxBytes: number },
): Promise<FetchResponse> {
  const connection = (await client.connectToBrokers([node])).get(node);
  if (!connection) throw new Error(`Kafka broker ${node} is not in the cluster metadata`);
  try {
    return (await api.async(
      connection,
      maxWaitTime,
      1,
      maxBytes,
      FetchIsolationLevels.READ_COMMITTED,
      0,
      -1,
      topics,
      [],
      '',
    )) as FetchResponse;
  } catch (err) {
    const response = (err as { response?: FetchResponse }).response;
    const partitions = response?.responses.flatMap((r) => r.partitions) ?? [];
    const onlyOutOfRange =
      response?.errorCode === 0 &&
      partitions.some((p) => p.errorCode === OFFSET_OUT_OF_RANGE) &&
      partitions.every((p) => p.errorCode === 0 || p.errorCode === OFFSET_OUT_OF_RANGE);
    if (onlyOutOfRange) return response;
    throw err;
  }
}
