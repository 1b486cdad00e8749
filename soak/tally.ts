/**
 * What a sink delivered against the reference reading (pg_recvlogical on a second slot): changes lost,
 * deliveries beyond the first (duplicated), ids the reference never saw (foreign), and order breaks
 * (an id not above the one before it in a stream that must be in commit order: two writers
 * interleaving, or a resend that slipped past the dedupe).
 */
export interface SinkTally {
  delivered: number;
  lost: number;
  duplicated: number;
  foreign: number;
  orderBreaks: number;
  /**
   * In the reference, never delivered, by a reader that stopped before the end (out of time): not
   * proven lost. `lost` counts only what a reader that read everything did not find.
   */
  notRead: number;
  /** A few examples of each, for the report. */
  examples: { lost: string[]; duplicated: string[]; foreign: string[]; orderBreaks: string[] };
}

/** The tally of a reader that did not get to the end: what it did not find was not read, not lost. */
export function unread(t: SinkTally): SinkTally {
  return { ...t, notRead: t.notRead + t.lost, lost: 0 };
}

/** `<commitLsn>/<seq>` → a sortable pair; commitLsn is `X/Y` hex. */
export function idKey(id: string): [bigint, number] {
  const [hi, lo, seq] = id.split('/');
  return [(BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`), Number(seq)];
}

export function idBefore(a: string, b: string): boolean {
  const [la, sa] = idKey(a);
  const [lb, sb] = idKey(b);
  return la < lb || (la === lb && sa < sb);
}

const EXAMPLES = 5;

/**
 * `streams`: the deliveries in the order each ordered stream saw them (the file: one stream; Kafka:
 * one per partition). `ordered` false for a sink that promises no order across keys (Pub/Sub).
 */
export function tally(expected: Iterable<string>, streams: string[][], ordered: boolean): SinkTally {
  const want = new Set(expected);
  const seen = new Map<string, number>();
  const t: SinkTally = {
    delivered: 0,
    lost: 0,
    duplicated: 0,
    foreign: 0,
    orderBreaks: 0,
    notRead: 0,
    examples: { lost: [], duplicated: [], foreign: [], orderBreaks: [] },
  };
  const note = (k: keyof SinkTally['examples'], s: string) => {
    if (t.examples[k].length < EXAMPLES) t.examples[k].push(s);
  };
  for (const stream of streams) {
    let prev: string | undefined;
    for (const id of stream) {
      t.delivered++;
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      if (n > 1) {
        t.duplicated++;
        note('duplicated', id);
      }
      if (!want.has(id)) {
        t.foreign++;
        note('foreign', id);
      }
      if (ordered && prev !== undefined && !idBefore(prev, id)) {
        t.orderBreaks++;
        note('orderBreaks', `${prev} then ${id}`);
      }
      prev = id;
    }
  }
  for (const id of want) {
    if (!seen.has(id)) {
      t.lost++;
      note('lost', id);
    }
  }
  return t;
}
