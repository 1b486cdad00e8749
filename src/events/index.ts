export * from './envelope.ts';
export { toDebezium, type DebeziumValue } from './debezium.ts';
