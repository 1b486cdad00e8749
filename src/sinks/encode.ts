import { toDebezium } from '../events/debezium.ts';
import { binaryAttributes, fromBinary, type CloudEvent } from '../events/envelope.ts';
import type { OutboundEvent } from './sink.ts';

export type Envelope = 'structured' | 'binary' | 'debezium';

/** CloudEvents content type of a structured-mode message. */
export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json; charset=UTF-8';

/** Header / attribute naming the encoding when it is not CloudEvents structured or binary. */
export const ENVELOPE_HEADER = 'tagc_envelope';

export interface EncodedMessage {
  /** Kafka headers / Pub/Sub attributes. */
  headers: Record<string, string>;
  value: string;
}

/**
 * One event as a message body plus headers, per `--envelope`:
 * - structured: the CloudEvent JSON as value; headers carry `content-type` and, so that a subscriber
 *   can dedupe or route without parsing the body, the `ce_*` context attributes too;
 * - binary: CloudEvents binary mode, `ce_*` headers and the data JSON as value;
 * - debezium: a Debezium-compatible change value; the `ce_*` headers stay for tracing and dedupe.
 */
export function encodeEvent(
  e: OutboundEvent,
  envelope: Envelope,
  db: string,
  version: string,
): EncodedMessage {
  const attrs = binaryAttributes(e.event);
  switch (envelope) {
    case 'structured':
      return { headers: { ...attrs, 'content-type': STRUCTURED_CONTENT_TYPE }, value: e.json };
    case 'binary':
      return { headers: attrs, value: JSON.stringify(e.event.data) };
    case 'debezium':
      return {
        headers: { ...attrs, [ENVELOPE_HEADER]: 'debezium' },
        value: JSON.stringify(toDebezium(e.event, db, version)),
      };
  }
}

/**
 * Reads a message back into a CloudEvent, whichever envelope wrote it (a Debezium value becomes the
 * event's data). Throws on a message that is none of them.
 */
export function decodeMessage(headers: Record<string, string | undefined>, value: string): CloudEvent {
  const contentType = headers['content-type'] ?? '';
  if (contentType.startsWith('application/cloudevents+json')) return JSON.parse(value) as CloudEvent;
  if (headers.ce_id !== undefined) return fromBinary(headers, JSON.parse(value));
  const parsed = JSON.parse(value) as Partial<CloudEvent>;
  if (parsed.specversion === '1.0' && typeof parsed.id === 'string') return parsed as CloudEvent;
  throw new Error('not a CloudEvent: no ce_id header/attribute and no structured body');
}
