import type { Change } from '../decode/index.ts';

/** A received item that had to wait: a change, a server keepalive, a decoding failure, or a server notice. */
export type InputItem =
  | { k: 'c'; lsn: string; change: Change }
  | { k: 'ka'; lsn: string; reply: boolean }
  | { k: 'err'; lsn: string; error: Error }
  | { k: 'n'; lsn: string; severity: string; message: string };

/** FIFO of waiting input: an array with a moving head, compacted now and then (no shift() per item). */
export class InputQueue {
  private items: (InputItem | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: InputItem): void {
    this.items.push(item);
  }

  /** The oldest item; only call when length > 0. */
  shift(): InputItem {
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined;
    if (this.head >= 4096) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
