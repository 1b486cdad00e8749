export { observeTransactions } from './commit-latency.ts';
export { keyOfColumns, Mapper } from './mapper.ts';
export { type Decoder, Pipeline } from './pipeline.ts';
export { type ResolvedRoles, resolveRoles, TableFilter } from './roles.ts';
