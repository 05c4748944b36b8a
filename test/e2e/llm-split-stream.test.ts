// The WebSocket-path variant of the parser's split tests: the fake's SSE bytes reach voxgate through a TCP
// proxy that cuts them at odd offsets (inside UTF-8 characters, escapes, `data:` lines and surrogate pairs).
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { FakeOpenRouter } from '../kit/fake-openrouter.js';
import { startTestServer } from '../kit/start-server.js';
import { TestClient } from '../kit/ws-client.js';

const PIECE_BYTES = [1, 2, 3, 5, 7, 11];

/** Forwards requests as they are and responses in tiny pieces, one write per event-loop turn. */
async function startSplittingProxy(target: URL): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((downstream) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(downstream).add(upstream);
    downstream.setNoDelay(true);
    downstream.pipe(upstream);
    let pending = Promise.resolve();
    let turn = 0;
    upstream.on('data', (bytes: Buffer) => {
      upstream.pause();
      pending = pending.then(async () => {
        for (let at = 0; at < bytes.length && !downstream.destroyed;) {
          const size = PIECE_BYTES[turn++ % PIECE_BYTES.length]!;
          downstream.write(bytes.subarray(at, at + size));
          at += size;
          await new Promise(setImmediate);
        }
        upstream.resume();
      });
    });
    upstream.on('end', () => void pending.then(() => downstream.end()));
    upstream.on('error', () => downstream.destroy());
    downstream.on('error', () => upstream.destroy());
    downstream.on('close', () => upstream.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}${target.pathname}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

t.test('SSE bytes split at odd offsets still give exact suggestions and deltas', async (t) => {
  const fake = await FakeOpenRouter.start({ tokenIntervalMs: 0 });
  t.teardown(() => fake.close());
  const proxy = await startSplittingProxy(new URL(fake.baseUrl));
  t.teardown(() => proxy.close());
  const server = await startTestServer({
    OPENROUTER_API_KEY: 'sk-e2e-key',
    OPENROUTER_BASE_URL: proxy.baseUrl,
    AUTO_SUGGEST: 'false',
  });
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl(), { extensions: 'all' });
  t.teardown(() => client.close());
  const sessionId = await client.startConversation({ response_count: 3 });

  // Escapes written out as the model would: \" \n \\ \t \uXXXX (also a surrogate pair), plus raw
  // Chinese (3 UTF-8 bytes) and a raw emoji (4 bytes, two UTF-16 units).
  const content = String.raw`{"suggestions": ["你好，\"朋友\"！\n第二行", "表情 😀 \ud83d\ude00 和 \\ 反斜杠", "制表\t符 \u4f60好"]}`;
  const expected = (JSON.parse(content) as { suggestions: string[] }).suggestions;
  for (const tokenChars of [1, 3]) {
    fake.enqueue({ kind: 'stream', content, tokenChars });
    client.send('manual_generate', { session_id: sessionId });
    const response = await client.next('llm_response');
    t.same(response.data.suggestions, expected, `tokens of ${tokenChars} chars: exact suggestions`);
    const texts: string[] = [];
    const halfPairs: string[] = [];
    for (const event of client.received) {
      if (event.type !== 'llm_response_delta' || event.data.request_id !== response.data.request_id) continue;
      const delta = event.data.delta as string;
      if (/[\ud800-\udbff]$/.test(delta)) halfPairs.push(delta);
      texts[event.data.index as number] = (texts[event.data.index as number] ?? '') + delta;
    }
    t.same(texts, expected, `tokens of ${tokenChars} chars: deltas add up`);
    t.same(halfPairs, [], 'no delta ends in half a surrogate pair');
  }
});
