export {
  changedColumns,
  columnsOf,
  decideShape,
  recordedAround,
  sameColumns,
  shapeAt,
  showsKnown,
  knownShape,
  type ChangeShape,
  type KnownShape,
  type ShapeColumn,
  type ShapeEntry,
} from './shape.ts';
export { ShapeTracker, type ShapeChange, type ShapeStore } from './tracker.ts';
export { PgShapeStore } from './pg-store.ts';
