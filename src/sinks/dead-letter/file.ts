import { open, type FileHandle } from 'node:fs/promises';
import { letterFields, type DeadLetter, type DeadLetterTarget } from './route.ts';

/** Dead letters appended to an NDJSON file, one line each (`event`: the governed event or null), fsync'd. */
export class FileDeadLetters implements DeadLetterTarget {
  readonly name: string;
  private readonly path: string;
  private fh?: FileHandle;
  private chain: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
    this.name = `file:${path}`;
  }

  async open(): Promise<void> {
    this.fh ??= await open(this.path, 'a');
  }

  send(letter: DeadLetter): Promise<void> {
    const line =
      JSON.stringify({ ...letterFields(letter), partitionkey: letter.partitionkey }).slice(0, -1) +
      `,"event":${letter.json ?? 'null'}}\n`;
    // One append at a time, in order: letters from the pipeline and from each sink runner.
    const run = this.chain.then(async () => {
      await this.open();
      await this.fh!.appendFile(line);
      await this.fh!.datasync();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = undefined;
  }
}
