// Streaming suggestions under load, measured end to end: N WebSocket clients, one session each, all send
// manual_generate at once to one voxgate (its own process, real OpenRouter engine), which streams from a
// token-logging fake OpenRouter in this process. Both ends of every measurement are taken in this process
// (performance.now()), so there is one clock.
//
//   npx tsx bench/llm-streaming.ts [--generations 500] [--rounds 3] [--token-ms 20] [--ttft-ms 300]
//                                  [--token-chars 2] [--count 3]
//
// (1) added latency: from the fake writing a token to the client receiving the delta that carries it
//     (tokens matched by suggestion index and character offset);
// (2) time to the first complete suggestion versus time to the whole list (llm_response), which is what a
//     non-streaming call would take at best.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { spawnServer } from '../test/kit/spawn-server.js';

const { values: args } = parseArgs({
  options: {
    generations: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
    'token-ms': { type: 'string', default: '20' },
    'ttft-ms': { type: 'string', default: '300' },
    'token-chars': { type: 'string', default: '2' },
    count: { type: 'string', default: '3' },
  },
});
const GENERATIONS = Number(args.generations);
const ROUNDS = Number(args.rounds);
const TOKEN_MS = Number(args['token-ms']);
const TTFT_MS = Number(args['ttft-ms']);
const TOKEN_CHARS = Number(args['token-chars']);
const COUNT = Number(args.count);

// Realistic replies: 20-40 Chinese characters, at most two sentences, no quotes or backslashes (so a
// suggestion's characters sit at known offsets of the JSON the fake streams).
const SENTENCES = [
  '好的，我明白您的意思了，那我们明天上午十点再见面详细聊聊吧。',
  '谢谢您的提醒，我会提前准备好所有材料，到时候一起带过去。',
  '这个方案听起来不错，不过预算方面我还需要和团队再确认一下。',
  '没问题，我下午有空，您看三点左右打电话给您方便吗？',
  '我理解您的担心，我们可以先小范围试一试，看看效果再决定。',
  '真不好意思让您久等了，刚才路上有点堵车，我们现在开始吧。',
  '您说得对，这件事确实需要慎重考虑，我回去再好好想想。',
];

/** One streamed reply as the fake wrote it: content offsets of each suggestion, write time of each token. */
interface StreamLog {
  suggestions: string[];
  /** Content (JSON) offset of each suggestion's first character. */
  starts: number[];
  tokenWrittenAt: number[];
}

/** A minimal OpenRouter-like SSE server that logs when it wrote each token (test/kit's fake does not). */
class TokenLoggingFake {
  readonly logs = new Map<string, StreamLog>();
  readonly #server = createServer((req, res) => void this.#handle(req, res));
  #next = 0;
  baseUrl = '';

  async start(): Promise<void> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.baseUrl = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/api/v1`;
  }

  close(): void {
    this.#server.closeAllConnections();
    this.#server.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      response_format?: { json_schema?: { schema?: { properties?: { suggestions?: { maxItems?: number } } } } };
    };
    const count = body.response_format?.json_schema?.schema?.properties?.suggestions?.maxItems ?? 3;
    const first = this.#next++;
    const suggestions = Array.from({ length: count }, (_, i) => SENTENCES[(first + i) % SENTENCES.length]!);
    const content = JSON.stringify({ suggestions });
    const starts: number[] = [];
    let from = 0;
    for (const text of suggestions) {
      const at = content.indexOf(text, from);
      starts.push(at);
      from = at + text.length;
    }
    const log: StreamLog = { suggestions, starts, tokenWrittenAt: [] };
    this.logs.set(String(req.headers['x-request-id']), log);
    const tokens: string[] = [];
    for (let i = 0; i < content.length; i += TOKEN_CHARS) tokens.push(content.slice(i, i + TOKEN_CHARS));
    const chunk = (fields: object): string => `data: ${JSON.stringify({ id: 'gen-bench', model: 'bench/model', ...fields })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': OPENROUTER PROCESSING\n\n');
    let index = 0;
    const writeNext = (): void => {
      if (res.destroyed) return;
      const token = tokens[index];
      if (token === undefined) {
        res.write(chunk({ choices: [{ index: 0, delta: { content: '' }, finish_reason: 'stop' }] }));
        res.write(chunk({ choices: [], usage: { prompt_tokens: 500, completion_tokens: tokens.length, total_tokens: 500 + tokens.length } }));
        res.end('data: [DONE]\n\n');
        return;
      }
      res.write(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: token }, finish_reason: null }] }));
      log.tokenWrittenAt[index] = performance.now();
      index++;
      setTimeout(writeNext, TOKEN_MS);
    };
    // Real streams are not in lockstep: +-10% on the time to first token spreads their phases.
    setTimeout(writeNext, TTFT_MS * (0.9 + Math.random() * 0.2));
  }
}

interface Delta {
  index: number;
  text: string;
  receivedAt: number;
}

/** One client with one session; records when each event arrived. */
class BenchClient {
  readonly socket: WebSocket;
  sessionId = '';
  #onEvent: ((type: string, data: Record<string, unknown>, at: number) => void) | null = null;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.on('message', (raw) => {
      const at = performance.now();
      const event = JSON.parse(raw.toString()) as { type: string; data: Record<string, unknown> };
      this.#onEvent?.(event.type, event.data, at);
    });
  }

  async open(): Promise<void> {
    await once(this.socket, 'open');
    const created = this.#waitFor('session_created');
    this.socket.send(JSON.stringify({ type: 'conversation_start', data: { response_count: COUNT, scenario_description: '商务会谈' } }));
    this.sessionId = (await created).data.session_id as string;
  }

  /** Sends manual_generate; resolves with the deltas and times once llm_response arrived. */
  generate(): { sentAt: number; done: Promise<{ requestId: string; deltas: Delta[]; suggestions: string[]; respondedAt: number }> } {
    const deltas: Delta[] = [];
    const done = new Promise<{ requestId: string; deltas: Delta[]; suggestions: string[]; respondedAt: number }>((resolve, reject) => {
      this.#onEvent = (type, data, at) => {
        if (type === 'llm_response_delta') deltas.push({ index: data.index as number, text: data.delta as string, receivedAt: at });
        else if (type === 'llm_response') resolve({ requestId: data.request_id as string, deltas, suggestions: data.suggestions as string[], respondedAt: at });
        else if (type === 'error') reject(new Error(`${String(data.error_code)}: ${String(data.message)}`));
      };
    });
    const sentAt = performance.now();
    this.socket.send(JSON.stringify({ type: 'manual_generate', data: { session_id: this.sessionId } }));
    return { sentAt, done };
  }

  #waitFor(wanted: string): Promise<{ data: Record<string, unknown> }> {
    return new Promise((resolve) => {
      this.#onEvent = (type, data) => {
        if (type === wanted) resolve({ data });
      };
    });
  }
}

interface RoundResult {
  tokenLatencyMs: number[];
  firstSuggestionMs: number[];
  wholeListMs: number[];
  mismatches: number;
}

/** Runs one round: every client generates at once; returns the latencies of every token and request. */
async function round(clients: BenchClient[], fake: TokenLoggingFake): Promise<RoundResult> {
  const runs = clients.map((client) => client.generate());
  const results = await Promise.all(runs.map((run) => run.done));
  const out: RoundResult = { tokenLatencyMs: [], firstSuggestionMs: [], wholeListMs: [], mismatches: 0 };
  results.forEach((result, i) => {
    const sentAt = runs[i]!.sentAt;
    const log = fake.logs.get(result.requestId);
    if (log === undefined || result.suggestions.join('\n') !== log.suggestions.join('\n')) {
      out.mismatches++;
      return;
    }
    const received: string[] = log.suggestions.map(() => '');
    const counted = new Set<number>();
    let firstDoneAt: number | null = null;
    for (const delta of result.deltas) {
      const before = received[delta.index]!.length;
      received[delta.index] += delta.text;
      // Every token that has a character in this delta and was not seen before arrived now.
      for (let k = 0; k < delta.text.length; k++) {
        const token = Math.floor((log.starts[delta.index]! + before + k) / TOKEN_CHARS);
        if (counted.has(token)) continue;
        counted.add(token);
        out.tokenLatencyMs.push(delta.receivedAt - log.tokenWrittenAt[token]!);
      }
      if (firstDoneAt === null && received[0] === log.suggestions[0]) firstDoneAt = delta.receivedAt;
    }
    if (received.join('\n') !== log.suggestions.join('\n')) out.mismatches++;
    out.firstSuggestionMs.push((firstDoneAt ?? result.respondedAt) - sentAt);
    out.wholeListMs.push(result.respondedAt - sentAt);
  });
  return out;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summary(values: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const r = (v: number): number => Math.round(v * 10) / 10;
  return { n: sorted.length, p50: r(percentile(sorted, 50)), p95: r(percentile(sorted, 95)), p99: r(percentile(sorted, 99)), max: r(sorted.at(-1) ?? Number.NaN) };
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Math.round(Number(match[1]) / 1024) : Number.NaN;
}

async function scenario(name: string, url: string, fake: TokenLoggingFake, pid: number, clientCount: number, rounds: number) {
  const clients = Array.from({ length: clientCount }, () => new BenchClient(url));
  await Promise.all(clients.map((client) => client.open()));
  const merged: RoundResult = { tokenLatencyMs: [], firstSuggestionMs: [], wholeListMs: [], mismatches: 0 };
  const cpuBefore = cpuSeconds(pid);
  // This process (fake + clients) takes both timestamps: its own event-loop lag is part of every figure.
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const startedAt = performance.now();
  for (let i = 0; i < rounds; i++) {
    const result = await round(clients, fake);
    merged.tokenLatencyMs.push(...result.tokenLatencyMs);
    merged.firstSuggestionMs.push(...result.firstSuggestionMs);
    merged.wholeListMs.push(...result.wholeListMs);
    merged.mismatches += result.mismatches;
  }
  const elapsedS = (performance.now() - startedAt) / 1000;
  const serverCpu = (cpuSeconds(pid) - cpuBefore) / elapsedS;
  loopDelay.disable();
  const benchLoopDelayMs = {
    p50: Math.round(loopDelay.percentile(50) / 1e5) / 10,
    p99: Math.round(loopDelay.percentile(99) / 1e5) / 10,
    max: Math.round(loopDelay.max / 1e5) / 10,
  };
  await Promise.all(clients.map((client) => {
    client.socket.close();
    return once(client.socket, 'close');
  }));
  const first = summary(merged.firstSuggestionMs);
  const whole = summary(merged.wholeListMs);
  return {
    name,
    clients: clientCount,
    generations: clientCount * rounds,
    mismatches: merged.mismatches,
    addedLatencyMs: summary(merged.tokenLatencyMs),
    firstSuggestionMs: first,
    wholeListMs: whole,
    firstToWholeRatioP50: Math.round((first.p50 / whole.p50) * 100) / 100,
    savedMsP50: Math.round(whole.p50 - first.p50),
    serverCpuCores: Math.round(serverCpu * 100) / 100,
    serverRssMb: rssMb(pid),
    benchLoopDelayMs,
  };
}

async function main(): Promise<void> {
  const fake = new TokenLoggingFake();
  await fake.start();
  const server = spawnServer({
    OPENROUTER_API_KEY: 'sk-bench',
    OPENROUTER_BASE_URL: fake.baseUrl,
    STT_ENGINE: 'mock',
    SESSION_PERSISTENCE_ENABLED: 'false',
    AUTO_SUGGEST: 'false',
    LOG_LEVEL: 'info',
    MAX_CONNECTIONS: String(GENERATIONS + 100),
    LLM_MAX_IN_FLIGHT: String(Math.max(512, GENERATIONS)),
  });
  try {
    const port = await server.port;
    const pid = server.child.pid as number;
    // Deltas are what this bench times: ask for the extension events.
    const url = `ws://127.0.0.1:${port}/conversation?extensions=all`;
    const results = [
      await scenario('1 client (unloaded)', url, fake, pid, 1, 5),
      await scenario(`${GENERATIONS} concurrent`, url, fake, pid, GENERATIONS, ROUNDS),
    ];
    const settings = { tokenMs: TOKEN_MS, ttftMs: TTFT_MS, tokenChars: TOKEN_CHARS, suggestions: COUNT, rounds: ROUNDS };
    process.stdout.write(`llm-streaming: fake OpenRouter ${TTFT_MS} ms to first token, ${TOKEN_MS} ms per ${TOKEN_CHARS}-char token, ${COUNT} suggestions of ~30 chars\n\n`);
    const row = (cells: Array<string | number>): string => `| ${cells.join(' | ')} |\n`;
    let table = row(['scenario', 'generations', 'added latency p50/p95/p99/max (ms)', 'first suggestion p50/p95 (ms)', 'whole list p50/p95 (ms)', 'first/whole p50', 'voxgate CPU (cores)', 'voxgate RSS (MB)', 'bench loop delay p99/max (ms)']);
    table += row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
    for (const r of results) {
      const a = r.addedLatencyMs;
      table += row([r.name, r.generations, `${a.p50} / ${a.p95} / ${a.p99} / ${a.max}`, `${r.firstSuggestionMs.p50} / ${r.firstSuggestionMs.p95}`,
        `${r.wholeListMs.p50} / ${r.wholeListMs.p95}`, r.firstToWholeRatioP50, r.serverCpuCores, r.serverRssMb, `${r.benchLoopDelayMs.p99} / ${r.benchLoopDelayMs.max}`]);
    }
    process.stdout.write(table);
    const mismatches = results.reduce((sum, r) => sum + r.mismatches, 0);
    if (mismatches > 0) process.stdout.write(`\nWARNING: ${mismatches} generations did not match what the fake streamed\n`);
    process.stdout.write(`\n${JSON.stringify({ date: new Date().toISOString(), settings, results })}\n`);
  } finally {
    server.kill('SIGTERM');
    await server.exited;
    fake.close();
  }
}

await main();
