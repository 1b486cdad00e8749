/**
 * Admission limits of the API (docs/security.md): a fixed number of slots per kind of long request
 * (Snapshot, Stream), taken on admission and given back when the response ends.
 */
export class ConcurrencyLimit {
  private inUse = 0;
  readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get active(): number {
    return this.inUse;
  }

  /** A release function (idempotent), or null when every slot is taken. */
  tryAcquire(): (() => void) | null {
    if (this.inUse >= this.max) return null;
    this.inUse++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
    };
  }
}

/** Runs async sections one at a time (check-then-take sequences that must not interleave). */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
