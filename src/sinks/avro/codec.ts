import avro from 'avsc';

/**
 * avsc (the maintained Avro implementation for JavaScript: schema resolution, unions, logical types,
 * a fast compiled encoder; no native parts) with Avro's `long` as a BigInt: avsc's own long is a JS
 * number and refuses values past 2^53, and int8 columns and xids go up to 2^63.
 */
const bigintLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (v: unknown) => BigInt(v as string | number),
  toJSON: (n: bigint) =>
    n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString(),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
});

export type AvroType = avro.Type;

/** An avsc type of a schema (its JSON text or object), longs as BigInts. */
export function avroType(schema: string | object): AvroType {
  return avro.Type.forSchema(
    typeof schema === 'string' ? (JSON.parse(schema) as avro.Schema) : (schema as avro.Schema),
    {
      registry: { long: bigintLong },
    },
  );
}
