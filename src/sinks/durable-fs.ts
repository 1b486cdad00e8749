import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The file-system calls the file sink and the Stream retention make, as a small interface: the
 * composition root passes the real one (`nodeFs`), fault tests pass one that fails or "crashes" at a
 * chosen call (test/support/faulty-fs.ts). Only the calls whose order and failure matter for
 * durability go through it; replay reads segments with plain streams.
 */
export interface DurableFile {
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
  write(buffer: Buffer, offset: number): Promise<{ bytesWritten: number }>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export interface DurableFs {
  /** 'a+': append and read (created when missing); 'w': a new file to fill; 'r': read only. */
  open(path: string, flags: 'a+' | 'w' | 'r'): Promise<DurableFile>;
  mkdir(dir: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync of a directory: makes a file's creation, rename or removal in it durable. */
  fsyncDir(dir: string): Promise<void>;
}

export const nodeFs: DurableFs = {
  open: (path, flags) => open(path, flags),
  mkdir: async (dir) => {
    await mkdir(dir, { recursive: true });
  },
  readdir: (dir) => readdir(dir),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  fsyncDir: async (dir) => {
    const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};

/** Reads a whole (small) file as text, or null when it does not exist. */
export async function readSmallFile(fs: DurableFs, path: string): Promise<string | null> {
  let f: DurableFile;
  try {
    f = await fs.open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const { size } = await f.stat();
    const buf = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await f.read(buf, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return buf.subarray(0, at).toString('utf8');
  } finally {
    await f.close();
  }
}

/**
 * Replaces a small file atomically and durably: written to `<path>.tmp`, fsync'd, renamed over the
 * old one, then the directory fsync'd. A crash at any point leaves either the old or the new file,
 * whole (a leftover `.tmp` is ignored and overwritten next time).
 */
export async function replaceFileDurably(fs: DurableFs, path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const f = await fs.open(tmp, 'w');
  try {
    const buf = Buffer.from(text, 'utf8');
    for (let off = 0; off < buf.length;) off += (await f.write(buf, off)).bytesWritten;
    await f.datasync();
  } finally {
    await f.close();
  }
  await fs.rename(tmp, path);
  await fs.fsyncDir(dirname(path));
}
