/**
 * A permanently rejected event (docs/governance.md): what it was and why. Never a row value beyond
 * the governed event itself (`json`, built after column and mask rules): reasons are library messages
 * with quoted literals left out.
 */
export interface DeadLetter {
  reason: string;
  /** The sink that rejected it, or `governance` when a rule failed before any sink. */
  sink: string;
  /** The topic it was meant for ('' when not routed yet). */
  topic: string;
  lsn: string;
  id: string;
  table: string;
  type: string;
  partitionkey: string;
  /** The governed event's JSON, when there is one. */
  json?: string;
}

/** Where dead letters go. `send` resolves once the letter is durable there. */
export interface DeadLetterTarget {
  readonly name: string;
  open(): Promise<void>;
  send(letter: DeadLetter): Promise<void>;
  close(): Promise<void>;
}

/** The route the pipeline and the sink runners use: a target, plus a count and a log line per letter. */
export interface DeadLetterRoute {
  send(letter: DeadLetter): Promise<void>;
}

export type DeadLetterSpec =
  { kind: 'none' } | { kind: 'kafka'; topic: string } | { kind: 'file'; path: string };

/** `none`, `kafka:TOPIC` or `file:PATH` (the config schema checked the shape). */
export function parseDeadLetterSpec(spec: string): DeadLetterSpec {
  if (spec.startsWith('kafka:')) return { kind: 'kafka', topic: spec.slice(6) };
  if (spec.startsWith('file:')) return { kind: 'file', path: spec.slice(5) };
  return { kind: 'none' };
}

/** The letter as one NDJSON line's object (the file target) and as Kafka headers. */
export function letterFields(l: DeadLetter): Record<string, string> {
  return {
    reason: l.reason,
    sink: l.sink,
    topic: l.topic,
    lsn: l.lsn,
    id: l.id,
    table: l.table,
    type: l.type,
  };
}
