// Client process of the idle-capacity mode: opens connections in batches, each with a session
// (conversation_start -> session_created), then keeps them quiet; ws answers the server's pings.
import WebSocket from 'ws';

import type { FromIdleWorker, IdleWorkerConfig, ToIdleWorker } from './messages.js';

const send = (message: FromIdleWorker): void => {
  process.send?.(message);
};

let config: IdleWorkerConfig | null = null;
const sockets = new Set<WebSocket>();
let closedByServer = 0;
let isStopping = false;

/** One connection with a session, or the reason it failed (`connect:ECONNREFUSED`, `http_503`, `timeout`...). */
function openOne(workerConfig: IdleWorkerConfig): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = new WebSocket(workerConfig.wsUrl, { perMessageDeflate: false, handshakeTimeout: workerConfig.timeoutMs });
    let isSettled = false;
    const settle = (failure: string | null): void => {
      if (isSettled) return;
      isSettled = true;
      clearTimeout(timer);
      if (failure !== null) socket.terminate();
      else sockets.add(socket);
      resolve(failure);
    };
    const timer = setTimeout(() => settle('timeout'), workerConfig.timeoutMs);
    socket.on('open', () => socket.send('{"type":"conversation_start","data":{"response_count":3}}'));
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const event = JSON.parse(data.toString()) as { type: string; data: { error_code?: string } };
      if (event.type === 'session_created') settle(null);
      else if (event.type === 'error') settle(`error:${event.data.error_code}`);
    });
    socket.on('unexpected-response', (_request, response) => settle(`http_${response.statusCode}`));
    socket.on('error', (err: NodeJS.ErrnoException) => settle(`connect:${err.code ?? err.message}`));
    socket.on('close', () => {
      if (sockets.delete(socket) && !isStopping) closedByServer++;
      settle('closed');
    });
  });
}

async function openBatch(count: number): Promise<void> {
  if (config === null) return;
  const results = await Promise.all(Array.from({ length: count }, () => openOne(config!)));
  const failures: Record<string, number> = {};
  let firstFailure: string | null = null;
  for (const failure of results) {
    if (failure === null) continue;
    failures[failure] = (failures[failure] ?? 0) + 1;
    firstFailure ??= failure;
  }
  send({ type: 'opened', open: sockets.size, failures, firstFailure });
}

process.on('message', (message: ToIdleWorker) => {
  switch (message.type) {
    case 'config':
      config = message.config;
      send({ type: 'ready' });
      break;
    case 'open':
      void openBatch(message.count);
      break;
    case 'count':
      send({ type: 'count', open: sockets.size, closedByServer });
      break;
    case 'stop':
      isStopping = true;
      for (const socket of sockets) socket.terminate();
      sockets.clear();
      send({ type: 'stopped' });
      process.disconnect?.();
      setTimeout(() => process.exit(0), 100).unref();
      break;
    default:
      assertNever(message);
  }
});

process.on('disconnect', () => process.exit(0));

function assertNever(value: never): never {
  throw new Error(`unknown message ${JSON.stringify(value)}`);
}
