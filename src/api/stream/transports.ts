import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { Transport } from './session.ts';

/** A session's Server-Sent Events transport over a response whose head is not sent yet. */
export function sseTransport(res: ServerResponse, onGone: () => void): Transport {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(': tag-connector stream\n\n');
  const ping = setInterval(() => res.write(': ping\n\n'), 15000);
  return {
    send: (id, json) => {
      res.write(`id: ${id}\ndata: ${json}\n\n`);
      return res.writableLength;
    },
    drained: (bytes) =>
      new Promise((resolve) => {
        // 'drain' never comes once the client is gone: its 'close' must end the wait too. And it
        // comes only after a write returned false (the buffer reached its highWaterMark, 64 KiB):
        // below that mark, a session with a small --stream-client-buffer-bytes would wait forever,
        // so the wait then polls the buffer instead (as the WebSocket transport does).
        let timer: NodeJS.Timeout | undefined;
        const done = () => {
          clearTimeout(timer);
          res.off('drain', check);
          res.off('close', done);
          resolve();
        };
        const check = () => {
          if (res.writableLength <= bytes || res.destroyed) done();
          else if (res.writableNeedDrain) res.once('drain', check);
          else timer = setTimeout(check, 5);
        };
        res.once('close', done);
        check();
      }),
    close: (reason) => {
      res.write(`event: error\ndata: ${JSON.stringify(reason)}\n\n`);
      res.end();
    },
    onClosed: (cb) =>
      res.on('close', () => {
        clearInterval(ping);
        onGone();
        cb();
      }),
  };
}

/** A session's WebSocket transport. */
export function wsTransport(socket: WebSocket, onGone: () => void): Transport {
  return {
    send: (_id, json) => {
      socket.send(json);
      return socket.bufferedAmount;
    },
    drained: async (bytes) => {
      while (socket.bufferedAmount > bytes && socket.readyState === socket.OPEN) {
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    close: (reason) => socket.close(4008, `${reason.error}: ${reason.message}`.slice(0, 120)),
    onClosed: (cb) =>
      socket.on('close', () => {
        onGone();
        cb();
      }),
  };
}
