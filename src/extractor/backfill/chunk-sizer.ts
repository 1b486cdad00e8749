/**
 * Chunks sized by time (docs/backfill.md): a live change committed after a chunk's high watermark
 * waits for the whole chunk's emission, so the rows per chunk follow how long the last chunk took to
 * emit, aiming at `targetMs`, never above the backfill's chunk size. Pure.
 */
export class ChunkSizer {
  /** Rows the next chunk reads. */
  size: number;
  private readonly max: number;
  private readonly targetMs: number;
  private readonly min: number;

  /** `targetMs` 0: every chunk is `max` rows. */
  constructor(max: number, targetMs: number) {
    this.max = max;
    this.targetMs = targetMs;
    this.min = Math.min(max, MIN_ROWS);
    // The first chunk is small: nothing is known yet of how long a row takes.
    this.size = targetMs > 0 ? Math.min(max, FIRST_ROWS) : max;
  }

  /** A chunk of `rows` rows took `ms` to emit. */
  emitted(rows: number, ms: number): void {
    if (this.targetMs <= 0 || rows <= 0) return;
    // A chunk emitted in no measurable time tells only that more rows fit: grow at most 2x per chunk.
    const ideal = ms > 0 ? (rows * this.targetMs) / ms : Infinity;
    const next = Math.min(ideal, this.size * 2, this.max);
    this.size = Math.max(this.min, Math.floor(next));
  }
}

/** Fewest rows a sized chunk reads (each chunk costs two watermark transactions besides its rows). */
const MIN_ROWS = 64;
/** Rows of the first chunk of a table when chunks are sized by time. */
const FIRST_ROWS = 512;
