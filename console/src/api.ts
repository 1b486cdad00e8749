import { parseSseFrame, takeFrames, type SseMessage } from './sse.ts';

/**
 * The console talks to the daemon's public HTTP API like any other client (docs/http-api.md): bearer
 * token from sessionStorage (never in a URL, never in localStorage), JSON errors `{error, message}`.
 */
const TOKEN_KEY = 'tag-connector.token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Listeners told when the API answers 401 (the token box then asks for a token). */
const unauthorizedListeners = new Set<() => void>();
export function onUnauthorized(fn: () => void): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

function headers(extra?: HeadersInit): Headers {
  const h = new Headers(extra);
  const token = getToken();
  if (token) h.set('authorization', `Bearer ${token}`);
  return h;
}

async function failure(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText;
  try {
    const body = (await res.json()) as { error?: string; message?: string };
    code = body.error ?? code;
    message = body.message ?? message;
  } catch {
    /* not JSON */
  }
  if (res.status === 401) for (const fn of unauthorizedListeners) fn();
  return new ApiError(res.status, code, message);
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, {
    ...init,
    headers: headers({
      accept: 'application/json',
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    }),
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/**
 * Server-Sent Events over fetch(): EventSource cannot send an Authorization header, and a token in
 * the URL would end up in logs. Resolves when the server ends the stream or `signal` aborts it.
 */
export async function sse(
  path: string,
  onMessage: (m: SseMessage) => void,
  signal: AbortSignal,
  lastEventId?: string,
): Promise<void> {
  const res = await fetch(path, {
    headers: headers({
      accept: 'text/event-stream',
      ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
    }),
    signal,
  });
  if (!res.ok || !res.body) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const { frames, rest } = takeFrames(buffer + value);
      buffer = rest;
      for (const frame of frames) {
        const m = parseSseFrame(frame);
        if (m) onMessage(m);
      }
    }
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
}
