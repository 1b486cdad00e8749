/**
 * Confluent's wire format of a registry-backed Kafka value: magic byte 0, the schema id as a 4-byte
 * big-endian integer, then the Avro binary encoding. Kafka Connect's AvroConverter, Flink's
 * `avro-confluent` format and Apicurio's ccompat serdes read it.
 */
export const MAGIC_BYTE = 0;
export const WIRE_HEADER_BYTES = 5;

/** `body` framed with schema id `id`. */
export function frame(id: number, body: Buffer): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new RangeError(`bad schema id ${id}`);
  const out = Buffer.allocUnsafe(WIRE_HEADER_BYTES + body.length);
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(id, 1);
  body.copy(out, WIRE_HEADER_BYTES);
  return out;
}

/** The schema id and the Avro body of a framed value; throws on anything else. */
export function unframe(value: Uint8Array): { id: number; body: Buffer } {
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (b.length < WIRE_HEADER_BYTES || b[0] !== MAGIC_BYTE)
    throw new Error('not a schema-registry framed value (magic byte 0 and a 4-byte schema id)');
  return { id: b.readInt32BE(1), body: b.subarray(WIRE_HEADER_BYTES) };
}
