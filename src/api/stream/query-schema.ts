/** JSON Schema of the filters Stream and Snapshot share (table, type, workspace). */
export const filterQueryProperties = {
  table: { type: 'string', maxLength: 1000, description: 'table or schema.table, comma-separated' },
  type: {
    type: 'string',
    maxLength: 1000,
    description: 'event types, comma-separated (task.created, row.*)',
  },
  workspace: { type: 'string', maxLength: 1000, description: 'workspace values, comma-separated' },
} as const;
