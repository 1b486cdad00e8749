import { nodeFs, type DurableFile, type DurableFs } from '../../src/sinks/durable-fs.ts';

/**
 * A DurableFs over the real one that fails or "crashes" at chosen calls, for the fault tests of the
 * file sink and the Stream retention. Every call is counted (`calls`); the plan sees each one and
 * may answer with a fault:
 * - `error`: the call throws an errno error (ENOSPC, EIO) and the process goes on;
 * - `crash`: the process dies at that call: it throws CrashError, and so does every later call
 *   (what was written through the real fs until then is what a restart finds, as after a SIGKILL).
 * A write fault may first write `partial` bytes for real (a short write torn at that point).
 */
export type FsOp =
  | 'open'
  | 'mkdir'
  | 'readdir'
  | 'rename'
  | 'unlink'
  | 'fsyncDir'
  | 'writev'
  | 'write'
  | 'read'
  | 'datasync'
  | 'truncate'
  | 'stat'
  | 'close';

export type Fault = { kind: 'error'; code: string; partial?: number } | { kind: 'crash'; partial?: number };
export type FaultPlan = (op: FsOp, path: string, call: number) => Fault | undefined;

export class CrashError extends Error {
  constructor(op: string) {
    super(`crashed at ${op}`);
    this.name = 'CrashError';
  }
}

function errnoError(code: string, op: string, path: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: injected at ${op} '${path}'`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export class FaultyFs implements DurableFs {
  readonly calls: { op: FsOp; path: string }[] = [];
  crashed = false;
  plan: FaultPlan;
  private readonly real: DurableFs;

  constructor(plan: FaultPlan = () => undefined, real: DurableFs = nodeFs) {
    this.plan = plan;
    this.real = real;
  }

  /** Counts the call and answers the plan: undefined goes on, a thrown error is the fault. */
  check(op: FsOp, path: string): Fault | undefined {
    if (this.crashed) throw new CrashError(`${op} after the crash`);
    this.calls.push({ op, path });
    const fault = this.plan(op, path, this.calls.length - 1);
    if (!fault) return undefined;
    if (fault.partial !== undefined && (op === 'writev' || op === 'write')) return fault;
    return this.raise(fault, op, path);
  }

  raise(fault: Fault, op: string, path: string): never {
    if (fault.kind === 'crash') {
      this.crashed = true;
      throw new CrashError(op);
    }
    throw errnoError(fault.code, op, path);
  }

  async open(path: string, flags: 'a+' | 'w' | 'r'): Promise<DurableFile> {
    this.check('open', path);
    return new FaultyFile(this, path, await this.real.open(path, flags));
  }
  async mkdir(dir: string): Promise<void> {
    this.check('mkdir', dir);
    await this.real.mkdir(dir);
  }
  async readdir(dir: string): Promise<string[]> {
    this.check('readdir', dir);
    return this.real.readdir(dir);
  }
  async rename(from: string, to: string): Promise<void> {
    this.check('rename', to);
    await this.real.rename(from, to);
  }
  async unlink(path: string): Promise<void> {
    this.check('unlink', path);
    await this.real.unlink(path);
  }
  async fsyncDir(dir: string): Promise<void> {
    this.check('fsyncDir', dir);
    await this.real.fsyncDir(dir);
  }
}

class FaultyFile implements DurableFile {
  private readonly fs: FaultyFs;
  private readonly path: string;
  private readonly real: DurableFile;

  constructor(fs: FaultyFs, path: string, real: DurableFile) {
    this.fs = fs;
    this.path = path;
    this.real = real;
  }

  async writev(buffers: Buffer[]): Promise<{ bytesWritten: number }> {
    const fault = this.fs.check('writev', this.path);
    if (fault) {
      const all = Buffer.concat(buffers);
      await this.real.write(all.subarray(0, Math.min(fault.partial!, all.length)), 0);
      this.fs.raise(fault, 'writev', this.path);
    }
    return this.real.writev(buffers);
  }
  async write(buffer: Buffer, offset: number): Promise<{ bytesWritten: number }> {
    const fault = this.fs.check('write', this.path);
    if (fault) {
      const rest = buffer.subarray(offset);
      await this.real.write(rest.subarray(0, Math.min(fault.partial!, rest.length)), 0);
      this.fs.raise(fault, 'write', this.path);
    }
    return this.real.write(buffer, offset);
  }
  async read(buffer: Buffer, offset: number, length: number, position: number) {
    this.fs.check('read', this.path);
    return this.real.read(buffer, offset, length, position);
  }
  async datasync(): Promise<void> {
    this.fs.check('datasync', this.path);
    await this.real.datasync();
  }
  async truncate(length: number): Promise<void> {
    this.fs.check('truncate', this.path);
    await this.real.truncate(length);
  }
  async stat(): Promise<{ size: number }> {
    this.fs.check('stat', this.path);
    return this.real.stat();
  }
  async close(): Promise<void> {
    // Closing is what the OS does for a dead process too: always done, never a fault point.
    await this.real.close();
  }
}
