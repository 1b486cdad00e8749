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

/*
 * Scavenges on the main thread alone. A catch-up's young generation is almost all garbage (0.2–0.5%
 * survives an 8 MB scavenge, which then takes ~0.4 ms), so helper threads have nothing to share but
 * their start-up and synchronisation; on a machine with two or few cores, where the walsender and the
 * sinks' threads want the other core, the main thread waited for its helpers to be scheduled: in a
 * `--trace-gc-nvp` of the wide catch-up (issue 22) the median scavenge paused 0.7 ms but those over
 * 2 ms (helpers waiting for a CPU) summed to 1.2 s of 10.9 s. Interleaved daemon runs (bench/ab.ts):
 * 1–2 µs less CPU per change (4–7%). Marking and sweeping stay concurrent (unlike
 * `--single-threaded-gc`, whose peak RSS was too high).
 */
setFlagsFromString('--no-parallel-scavenge');
