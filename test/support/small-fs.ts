import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real, small file system for disk-full tests: a size-limited tmpfs mounted on a temp directory
 * (the harness runs as root). Writes past its size fail with ENOSPC from the kernel, short writes
 * included. Fails loudly when it cannot be mounted: the tests that need it never skip.
 */
export class SmallFs {
  readonly dir: string;
  readonly sizeKiB: number;
  private readonly filler: string;

  constructor(sizeKiB: number) {
    this.sizeKiB = sizeKiB;
    this.dir = mkdtempSync(join(tmpdir(), 'tagc-smallfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0777`, 'tmpfs', this.dir], {
        stdio: 'pipe',
      });
    } catch (err) {
      rmSync(this.dir, { recursive: true, force: true });
      throw new Error(
        `cannot mount a ${sizeKiB} KiB tmpfs for the disk-full tests (they need root, or CAP_SYS_ADMIN in ` +
          `a container): ${(err as Error).message}`,
      );
    }
    this.filler = join(this.dir, 'filler');
  }

  /** Fills the file system up to `leaveKiB` free (by a filler file). */
  fill(leaveKiB: number): void {
    const free = this.freeKiB();
    if (free > leaveKiB) writeFileSync(this.filler, Buffer.alloc((free - leaveKiB) * 1024, 0x78));
  }

  /** Removes the filler: the space is back. */
  free(): void {
    rmSync(this.filler, { force: true });
  }

  freeKiB(): number {
    const out = execFileSync('df', ['-k', '--output=avail', this.dir]).toString().trim().split('\n');
    return Number(out.at(-1));
  }

  unmount(): void {
    execFileSync('umount', [this.dir], { stdio: 'pipe' });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
