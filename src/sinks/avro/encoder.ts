import { ConnectorError } from '../../errors.ts';
import type { CloudEvent } from '../../events/envelope.ts';
import { avroType, type AvroType } from './codec.ts';
import { SchemaIncompatibleError, type SchemaRegistryClient } from './registry.ts';
import { avroTableSchema, AvroShapeError, type AvroColumn, type AvroTableSchema } from './schema.ts';
import { frame } from './wire.ts';

/** The governed columns of a table as the catalog has them now (the composition root reads them). */
export type AvroColumnSource = (table: string) => Promise<AvroColumn[]>;

/** The registry subject of a topic's values (Confluent's TopicNameStrategy). */
export const valueSubject = (topic: string): string => `${topic}-value`;

interface TableEntry {
  schema: AvroTableSchema;
  text: string;
  type: AvroType;
}

/** One event to encode: its table, the topic it goes to and the event (its structured JSON parsed). */
export interface AvroItem {
  table: string;
  topic: string;
  event: CloudEvent;
}

/**
 * Events as Avro values in Confluent's wire format (docs/governance.md "Avro"). Each table's schema
 * is derived from its governed columns on first use and registered under `<topic>-value`; the ids are
 * cached. An event the schema cannot write (a column added or retyped since) makes it derive the
 * schema again: a changed schema is registered as a new version, which the registry may refuse
 * (SchemaIncompatibleError, naming the table: the daemon stops); a `schema.changed` event derives it
 * afresh and goes first under the new version. An event that still does not fit is
 * an AvroShapeError (a rejection: the dead letters, or a stop). Never a JSON fallback.
 */
export class AvroEventEncoder {
  private readonly registry: SchemaRegistryClient;
  private readonly columns: AvroColumnSource;
  private readonly tables = new Map<string, TableEntry>();
  /** subject → the table whose schema it holds, and that schema's id */
  private readonly subjects = new Map<string, { table: string; text: string; id: number }>();

  constructor(registry: SchemaRegistryClient, columns: AvroColumnSource) {
    this.registry = registry;
    this.columns = columns;
  }

  /** The events' values, framed, in order. */
  async encodeAll(items: readonly AvroItem[]): Promise<Buffer[]> {
    const out = new Array<Buffer>(items.length);
    for (let i = 0; i < items.length; i++) out[i] = await this.encode(items[i]!);
    return out;
  }

  /** One event's value, framed (schema derived and registered as needed). */
  async encode(item: AvroItem): Promise<Buffer> {
    const event = item.event;
    // schema.changed says the table's columns changed: it is the first record of the new schema (an
    // incompatible one is refused here, before any row of the new shape)
    let entry =
      (event.type === 'schema.changed' ? undefined : this.tables.get(item.table)) ??
      (await this.derive(item.table));
    let record: Record<string, unknown>;
    try {
      record = entry.schema.toRecord(event);
    } catch (err) {
      if (!(err instanceof AvroShapeError)) throw err;
      // the table may have changed since its schema was derived: derive it again, once
      const fresh = await this.derive(item.table);
      if (fresh.text === entry.text) throw err;
      entry = fresh;
      record = entry.schema.toRecord(event);
    }
    const id = await this.idFor(item.topic, item.table, entry);
    return frame(id, entry.type.toBuffer(record));
  }

  /** The schema id of a table's schema under a topic's subject, registered on first use. */
  private async idFor(topic: string, table: string, entry: TableEntry): Promise<number> {
    const subject = valueSubject(topic);
    const known = this.subjects.get(subject);
    if (known && known.table !== table)
      throw new ConnectorError(
        'avro_topic_shared',
        `${table}: topic ${topic} carries ${known.table} too: Avro values with ${subject} subjects need one table per topic (route with tables.<t>.topic)`,
      );
    if (known?.text === entry.text) return known.id;
    let id: number;
    try {
      id = await this.registry.register(subject, entry.text);
    } catch (err) {
      if (err instanceof SchemaIncompatibleError)
        throw new SchemaIncompatibleError(
          `${table}: the schema registry refused its Avro schema under ${subject} (the table's columns changed incompatibly): ${err.message}`,
        );
      throw err;
    }
    this.subjects.set(subject, { table, text: entry.text, id });
    return id;
  }

  private async derive(table: string): Promise<TableEntry> {
    const columns = await this.columns(table);
    if (columns.length === 0) throw new AvroShapeError(table, 'the catalog has no columns for it (dropped?)');
    const schema = avroTableSchema(table, columns);
    const entry = { schema, text: JSON.stringify(schema.schema), type: avroType(schema.schema) };
    this.tables.set(table, entry);
    return entry;
  }
}
