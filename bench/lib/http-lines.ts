import { request } from 'node:http';

export interface LinesResult {
  status: number;
  /** Newline bytes in the body. */
  lines: number;
  bytes: number;
  /** The body's first bytes (up to 64 KiB), decoded: for error messages and sanity checks. */
  head: string;
}

const NEWLINE = 0x0a;
const HEAD_BYTES = 64 * 1024;

/**
 * GETs `url` and reads the body to its end, counting newline bytes with Buffer.indexOf: no per-line
 * strings, no JSON, no web streams. A lean reader, so that the figure measured is the server's.
 */
export function countLines(url: string): Promise<LinesResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', agent: false }, (res) => {
      let lines = 0;
      let bytes = 0;
      const head: Buffer[] = [];
      let headBytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (headBytes < HEAD_BYTES) {
          head.push(chunk.subarray(0, HEAD_BYTES - headBytes));
          headBytes += Math.min(chunk.length, HEAD_BYTES - headBytes);
        }
        let i = chunk.indexOf(NEWLINE);
        while (i >= 0) {
          lines++;
          i = chunk.indexOf(NEWLINE, i + 1);
        }
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, lines, bytes, head: Buffer.concat(head).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
