/** Server-Sent Events framing (pure: unit-tested in test/unit/console-sse.test.ts). */
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/**
 * Splits complete frames (ended by a blank line) off a buffer; the rest waits for more bytes. Lines end
 * with LF: the daemons' Stream never sends CR.
 */
export function takeFrames(buffer: string): { frames: string[]; rest: string } {
  const frames: string[] = [];
  let rest = buffer;
  let end: number;
  while ((end = rest.indexOf('\n\n')) >= 0) {
    frames.push(rest.slice(0, end));
    rest = rest.slice(end + 2);
  }
  return { frames, rest };
}

/** One SSE frame (lines up to a blank line); null for a comment-only frame (pings). */
export function parseSseFrame(frame: string): SseMessage | null {
  let id: string | undefined;
  let event = 'message';
  const data: string[] = [];
  for (const line of frame.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  return { ...(id !== undefined ? { id } : {}), event, data: data.join('\n') };
}
