import { errors } from '../errors.ts';
import { comparePosition, parseEventId, type Position } from '../util/lsn.ts';
import type { DurableFile } from './durable-fs.ts';

/** One complete line of an NDJSON sink file, parsed. */
export interface TailLine {
  /** Byte offset of the line's start. */
  offset: number;
  id: string;
  type: string;
  value: Record<string, unknown>;
}

export interface CheckedTail {
  /** The last complete line, or null when the file holds none. */
  last: TailLine | null;
  /** Where the complete lines end (just after the last newline): bytes past it are a torn write. */
  validEnd: number;
}

/** At least this much of a file's end is checked line by line on open. */
const WINDOW = 256 * 1024;

/** Lines of this type are ours (reset markers), not change events: they restart the id order. */
export const MARKER_TYPE_PREFIX = 'tag_connector.';

/**
 * Checks that an NDJSON sink file ends on complete events, and says where its complete part ends.
 * Every complete line of the last WINDOW bytes (at least one line) must be a JSON event with an
 * `id` and a `type`, and change events' ids must rise strictly: a torn line in the middle, a line of
 * zeros left by a power loss, or a batch written twice (what a retry after a partial write did before
 * appendDurably cut the file back) are errors naming the byte offset and the way out.
 *
 * The bytes after the last newline are a torn write: the process died inside a writev (the kernel
 * stops a write between pages on SIGKILL), before the fdatasync, so nothing of that batch was ever
 * acknowledged. When they look like the start of an event line (a `{`, no NUL byte) the caller cuts
 * them; anything else there is an error too. The complete lines of such a batch stay: they are whole
 * events in order, the checkpoint is the last of them, and the runner skips them when they come again.
 */
export async function checkTail(file: DurableFile, size: number, path: string): Promise<CheckedTail> {
  if (size === 0) return { last: null, validEnd: 0 };
  let start = Math.max(0, size - WINDOW);
  let buf = await readRange(file, start, size);
  let lastNl = buf.lastIndexOf(0x0a);
  // Grow the window until it holds the last newline and one whole line before it (or the file start).
  const lineBefore = (nl: number) => (nl <= 0 ? -1 : buf.lastIndexOf(0x0a, nl - 1));
  while (start > 0 && (lastNl < 0 || lineBefore(lastNl) < 0)) {
    const from = Math.max(0, start - Math.max(WINDOW, buf.length));
    buf = Buffer.concat([await readRange(file, from, start), buf]);
    start = from;
    lastNl = buf.lastIndexOf(0x0a);
  }
  const validEnd = lastNl < 0 ? start : start + lastNl + 1;
  if (validEnd < size) {
    const torn = buf.subarray(validEnd - start);
    if (torn[0] !== 0x7b || torn.includes(0)) {
      throw errors.sinkFileDamaged(
        path,
        validEnd,
        'the file ends in bytes that are not the start of an event',
      );
    }
  }
  // Complete lines of the window: from its first line start to validEnd.
  let at = 0;
  if (start > 0) at = buf.indexOf(0x0a) + 1;
  let last: TailLine | null = null;
  let prev: Position | null = null;
  const end = validEnd - start;
  while (at < end) {
    const nl = buf.indexOf(0x0a, at);
    const line = parseLine(buf.subarray(at, nl), start + at, path);
    if (line.type.startsWith(MARKER_TYPE_PREFIX)) prev = null;
    else {
      const pos = positionOf(line, path);
      if (prev && comparePosition(pos, prev) <= 0) {
        throw errors.sinkFileDamaged(
          path,
          line.offset,
          `event ${line.id} does not follow the event before it (a batch written twice, or out of order)`,
        );
      }
      prev = pos;
    }
    last = line;
    at = nl + 1;
  }
  return { last, validEnd };
}

function parseLine(bytes: Buffer, offset: number, path: string): TailLine {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw errors.sinkFileDamaged(path, offset, 'a line that is not JSON (a torn write)');
  }
  const v = value as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || typeof v.id !== 'string' || typeof v.type !== 'string') {
    throw errors.sinkFileDamaged(path, offset, 'a line that is no event (no id or type)');
  }
  return { offset, id: v.id, type: v.type, value: v };
}

/** The stream position of a change event's line. */
export function positionOf(line: TailLine, path: string): Position {
  try {
    return parseEventId(line.id);
  } catch {
    throw errors.sinkFileDamaged(path, line.offset, `an event id that is no stream position (${line.id})`);
  }
}

async function readRange(file: DurableFile, from: number, to: number): Promise<Buffer> {
  const buf = Buffer.alloc(to - from);
  let at = 0;
  while (at < buf.length) {
    const { bytesRead } = await file.read(buf, at, buf.length - at, from + at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return buf.subarray(0, at);
}
