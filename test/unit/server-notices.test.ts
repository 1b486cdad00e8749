import { describe, expect, it } from '@jest/globals';
import { skippedChange } from '../../src/extractor/decode/index.ts';

// The messages as wal2json 2.5 prints them (wal2json.c, elog(WARNING, ...)), seen on PostgreSQL 15.
describe('skippedChange: the notices by which an output plugin says it left a change out', () => {
  it('reads format-version 2 warnings (schema and table)', () => {
    expect(
      skippedChange({
        severity: 'WARNING',
        message: 'no tuple identifier for UPDATE in table "public"."np"',
      }),
    ).toEqual({
      action: 'UPDATE',
      table: 'public.np',
      reason: 'no tuple identifier for UPDATE in table "public"."np"',
    });
    expect(
      skippedChange({ severity: 'WARNING', message: 'no tuple identifier for DELETE in table "a b"."c.d"' }),
    ).toMatchObject({ action: 'DELETE', table: 'a b.c.d' });
    expect(
      skippedChange({ severity: 'WARNING', message: 'no tuple data for INSERT in table "s"."t"' }),
    ).toMatchObject({ action: 'INSERT', table: 's.t' });
    expect(
      skippedChange({ severity: 'WARNING', message: 'no old tuple data for DELETE in table "s"."t"' }),
    ).toMatchObject({ action: 'DELETE', table: 's.t' });
  });
  it('reads format-version 1 warnings (table only)', () => {
    expect(
      skippedChange({ severity: 'WARNING', message: 'no tuple data for UPDATE in table "t"' }),
    ).toMatchObject({ action: 'UPDATE', table: 't' });
    expect(
      skippedChange({
        severity: 'WARNING',
        message: 'table "t" without primary key or replica identity is nothing',
      }),
    ).toMatchObject({ action: 'CHANGE', table: 't' });
  });
  it('leaves every other notice alone', () => {
    expect(
      skippedChange({ severity: 'NOTICE', message: 'no tuple identifier for UPDATE in table "s"."t"' }),
    ).toBeUndefined();
    expect(
      skippedChange({
        severity: 'WARNING',
        message: 'terminating connection because of crash of another server process',
      }),
    ).toBeUndefined();
    expect(skippedChange({ severity: 'WARNING', message: '' })).toBeUndefined();
  });
});
