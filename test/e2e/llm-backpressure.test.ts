// A client that stops reading while the model streams a lot of text, through the whole path: voxgate runs
// in its own process (so its memory and event loop are its own), the fake OpenRouter and the clients here.
// What must hold: voxgate's memory stays bounded, its upstream read pauses (the fake's writes get stuck),
// after SLOW_CONSUMER_TIMEOUT_MS the upstream request is aborted and the slow client is told, and a
// normal client on the same server is served all along (while the stall lasts, not after it).
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import t from 'tap';
import { FakeOpenRouter, type FakeRequestRecord, type FakeScript } from '../kit/fake-openrouter.js';
import { spawnServer } from '../kit/spawn-server.js';
import { TestClient, type ServerEventJson } from '../kit/ws-client.js';

const HIGH_WATER_BYTES = 64 * 1024;
const MAX_BUFFERED_BYTES = 256 * 1024;
// Long enough that the normal client's three generations fit into the stall on a loaded machine.
const SLOW_CONSUMER_TIMEOUT_MS = 6_000;
// On loopback the kernel takes several MB on each hop (voxgate -> client, fake -> voxgate) before
// backpressure shows, so the model's reply must be much larger than that: 5 x 6 MB of ASCII text.
const FLOOD_SUGGESTION_CHARS = 6 * 1024 * 1024;
const FLOOD_MARK = 'FLOOD-SCENARIO';

/** Resident set size of a process, from /proc (bytes). */
function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function floodText(index: number): string {
  const line = `suggestion ${index}: a very long and perfectly speakable reply, repeated to fill buffers. `;
  return line.repeat(Math.ceil(FLOOD_SUGGESTION_CHARS / line.length)).slice(0, FLOOD_SUGGESTION_CHARS);
}

const MB = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function timedGeneration(client: TestClient, sessionId: string): Promise<{ ms: number; response: ServerEventJson }> {
  const startedAt = performance.now();
  client.send('manual_generate', { session_id: sessionId });
  const response = await client.next('llm_response');
  return { ms: performance.now() - startedAt, response };
}

t.test('a client that stops reading: bounded memory, upstream paused then aborted, SLOW_CONSUMER, others unaffected', async (t) => {
  const flood: FakeScript = {
    kind: 'stream',
    suggestions: [0, 1, 2, 3, 4].map(floodText),
    firstTokenDelayMs: 0,
    tokenIntervalMs: 0,
    tokenChars: 4096,
  };
  const fake = await FakeOpenRouter.start({
    stuckAfterMs: 300,
    respond: (record) => {
      const prompt = (record.body.messages ?? []).map((m) => m.content).join('\n');
      return prompt.includes(FLOOD_MARK) ? flood : { kind: 'stream', firstTokenDelayMs: 0, tokenIntervalMs: 1 };
    },
  });
  t.teardown(() => fake.close());
  const server = spawnServer({
    OPENROUTER_API_KEY: 'sk-e2e-key',
    OPENROUTER_BASE_URL: fake.baseUrl,
    OPENROUTER_TIMEOUT_MS: '60000',
    STT_ENGINE: 'mock',
    SESSION_PERSISTENCE_ENABLED: 'false',
    AUTO_SUGGEST: 'false',
    WEBSOCKET_HIGH_WATER_BYTES: String(HIGH_WATER_BYTES),
    WEBSOCKET_MAX_BUFFERED_BYTES: String(MAX_BUFFERED_BYTES),
    SLOW_CONSUMER_TIMEOUT_MS: String(SLOW_CONSUMER_TIMEOUT_MS),
    LOG_LEVEL: 'info',
  });
  t.teardown(() => server.kill());
  const port = await server.port;
  const pid = server.child.pid as number;
  const url = `ws://127.0.0.1:${port}/conversation`;

  // The normal client alone: its time to llm_response, after a warm-up.
  const normal = await TestClient.connect(url);
  t.teardown(() => normal.close());
  const normalSession = await normal.startConversation({ response_count: 3, scenario_description: '普通对话' });
  await timedGeneration(normal, normalSession);
  const aloneMs: number[] = [];
  for (let i = 0; i < 3; i++) aloneMs.push((await timedGeneration(normal, normalSession)).ms);
  const baselineRss = rssBytes(pid);

  // The slow client: connected and set up, then it stops reading its socket.
  // The slow client asks for the streamed deltas: they are what floods it.
  const slow = await TestClient.connect(url, { extensions: 'all' });
  t.teardown(() => slow.close());
  const slowSession = await slow.startConversation({ response_count: 5, scenario_description: FLOOD_MARK });
  const slowSocket = (slow.socket as unknown as { _socket: Socket })._socket;
  slowSocket.pause();

  let peakRss = baselineRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssBytes(pid));
  }, 20);
  t.teardown(() => clearInterval(sampler));

  const stuck = once(fake.events, 'write-stuck') as Promise<[FakeRequestRecord]>;
  const aborted = once(fake.events, 'client-abort') as Promise<[FakeRequestRecord]>;
  slow.send('manual_generate', { session_id: slowSession });
  const first = await Promise.race([stuck.then(() => 'stuck'), aborted.then(() => 'aborted')]);
  t.equal(first, 'stuck', 'the upstream read paused (the fake\'s writes got stuck) before anything was aborted');
  if (first !== 'stuck') {
    slowSocket.resume();
    const closed = await slow.closed;
    t.comment(`instead the slow client was closed with ${closed.code} ${closed.reason}; server log: ${
      server.stdout().split('\n').filter((line) => /slow consumer/.test(line)).join(' ')}`);
    return;
  }
  const [record] = await stuck;
  const stuckAt = performance.now();
  const bytesWhenStuck = record.bytesWritten;
  t.comment(`fake stuck after writing ${MB(bytesWhenStuck)} of a ${MB(5 * FLOOD_SUGGESTION_CHARS)} reply`);

  // While the slow client is stalled, the normal client is served: before the stall ends, not after.
  const duringMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { ms, response } = await timedGeneration(normal, normalSession);
    duringMs.push(ms);
    t.equal(response.data.suggestions.length, 3);
  }
  t.equal(record.clientAborted, false, 'the measurements above ran during the stall');
  t.equal(record.bytesWritten, bytesWhenStuck, 'the fake wrote nothing more while the client was stalled');

  const [abortedRecord] = await aborted;
  const abortedAt = performance.now();
  t.equal(abortedRecord, record, 'the flooding request was aborted by voxgate');
  t.equal(record.completed, false);
  t.ok(record.bytesWritten < 5 * FLOOD_SUGGESTION_CHARS / 2, `upstream stopped after ${MB(record.bytesWritten)}`);
  // No bound on when: voxgate's timer starts when its send buffer passes the high-water mark, an unknown
  // while (kernel buffers filling) before the fake notices, and a loaded machine is late by any amount.
  // The SLOW_CONSUMER error below says which timer aborted it.
  t.comment(`aborted ${Math.round(abortedAt - stuckAt)} ms after the fake got stuck`);
  clearInterval(sampler);
  const rssGrowth = peakRss - baselineRss;
  t.comment(`voxgate RSS: baseline ${MB(baselineRss)}, peak ${MB(peakRss)} (+${MB(rssGrowth)})`);
  t.ok(rssGrowth < 64 * 1024 * 1024, `voxgate memory stayed bounded: +${MB(rssGrowth)}`);

  // For the reader only: on a loaded machine these vary too much for an assertion (bench/ measures them).
  t.comment(`normal client: alone ${aloneMs.map(Math.round).join('/')} ms, during the stall ${duringMs.map(Math.round).join('/')} ms`);

  // The slow client reads again: it gets what was buffered, then is told why its generation stopped.
  slowSocket.resume();
  const outcome = await Promise.race([
    slow.waitFor((e) => e.type === 'error', undefined, 'error').then((event) => ({ event, closed: null })),
    slow.closed.then((closed) => ({ event: null, closed })),
  ]);
  if (outcome.event !== null) {
    t.match(outcome.event.data, { session_id: slowSession, error_code: 'SLOW_CONSUMER', details: /^request_id: / }, 'told SLOW_CONSUMER');
    slow.send('get_message_history', { session_id: slowSession });
    await slow.next('message_history_response');
    t.notOk(slow.received.some((e) => e.type === 'llm_response'), 'the error only: nothing invented, nothing erased');
  } else {
    t.equal(outcome.closed?.code, 1008, 'or closed as a slow consumer');
  }
  t.equal(fake.requests.filter((r) => r.body.messages?.some((m) => m.content.includes(FLOOD_MARK))).length, 1, 'no retry');
  // Connection closes past WEBSOCKET_MAX_BUFFERED_BYTES and logs this line: its buffer never got there.
  t.notMatch(server.stdout(), /slow consumer: closing connection/, 'the send buffer stayed under WEBSOCKET_MAX_BUFFERED_BYTES');
});
