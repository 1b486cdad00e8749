export { Catalog, type ColumnInfo, type TableInfo } from './catalog.ts';
export {
  type BeginChange,
  type ChangeShape,
  type Change,
  DecodeError,
  type MessageChange,
  type ReadChange,
  type Row,
  type RowChange,
  type TruncateChange,
} from './changes.ts';
export { hasColumn, jsonKey, jsonString, keyOf, rowJson, valueText } from './row-json.ts';
export { completeToast, toastToComplete } from './toast.ts';
export { baseType, converterFor, isToastable } from './values.ts';
export { textToJsonFor, type TextToJson } from './value-json.ts';
export { decodeWal2Json, WAL2JSON_OPTIONS } from './wal2json.ts';
export { governedColumns, tableColumnsQuery, type GovernedColumn } from './table-columns.ts';
export { skippedChange, type ServerNotice, type SkippedChange } from './server-notices.ts';
