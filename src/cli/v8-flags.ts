import { setFlagsFromString } from 'node:v8';

/*
 * Imported first by the CLI entry, before any other module runs.
 *
 * Allocation-site pretenuring off. V8 watches how many objects of each allocation site survive a
 * young-generation GC and, past a threshold, allocates that site's objects straight in the old
 * generation from then on. A catch-up trips it whenever changes wait a moment (the first catalog
 * load, a sink at its in-flight bound): the decoder's row objects become "long-lived" for good, and
 * every short-lived value they point to is then kept alive by old-generation garbage until the next
 * full GC. Measured on captured wal2json messages (`npm run bench:pipeline`, 4 MB semi-space): 22% of
 * allocated bytes promoted and 0.6 s of scavenges per 300k changes with pretenuring, 0.2% and 0.15 s
 * without it. The flag is read when V8 decides, so setting it at start-up takes effect.
 */
setFlagsFromString('--no-allocation-site-pretenuring');
