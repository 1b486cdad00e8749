/** Never succeeds: its job ends in the dead-letter queue. */
export default function alwaysFails(): never {
  throw new Error('always fails');
}
