/**
 * Avro values with a schema registry (--schema-registry; docs/governance.md "Avro"): schema.ts (a
 * table's Avro schema from its governed columns, and events as its records), codec.ts (avsc, longs as
 * BigInts), registry.ts (the Confluent REST API client), wire.ts (Confluent's framing), encoder.ts
 * (derive, register, cache, encode).
 */
export { AvroEventEncoder, valueSubject, type AvroColumnSource, type AvroItem } from './encoder.ts';
export { avroType, type AvroType } from './codec.ts';
export { SchemaIncompatibleError, SchemaRegistryClient, type SchemaRegistryOptions } from './registry.ts';
export {
  avroFieldNames,
  avroName,
  avroTableSchema,
  avroValueType,
  AvroShapeError,
  type AvroColumn,
  type AvroTableSchema,
} from './schema.ts';
export { frame, unframe, MAGIC_BYTE, WIRE_HEADER_BYTES } from './wire.ts';
