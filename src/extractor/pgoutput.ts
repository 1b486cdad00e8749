import type { Decoder } from './pipeline.ts';

export function createPgoutputDecoder(): Decoder {
  throw new Error('pgoutput decoding is not implemented yet');
}
