export { migrate, type Migration } from './migrate.ts';
export { ident, qualified, type Db, type Query } from './db.ts';
