// A fake OpenRouter (chat completions over SSE) for tests and for running voxgate without a key.
// It speaks like the real one: keep-alive comments, one content token per chunk, usage in the last chunk,
// `data: [DONE]`; and it can misbehave on demand, one script per request.
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export interface FakePrediction {
  tendency: string;
  mood: string;
  tone: string;
}

/** What goes wrong (or right) after `tokens` content tokens of a streamed reply. */
export interface FakeInterruption {
  tokens: number;
  /**
   * `error-chunk`: a chunk with a top-level `error` and finish_reason "error", then the end.
   * `finish-error`: finish_reason "error" without an error object. `stall`: nothing more, connection open.
   * `flood`: keep-alive comments until res.write() reports backpressure, then wait for drain and finish
   * normally. `hang-up`: destroy the socket.
   */
  then: 'error-chunk' | 'finish-error' | 'stall' | 'flood' | 'hang-up';
  code?: number | string;
  message?: string;
}

export type FakeScript =
  | {
      kind: 'status';
      status: number;
      code?: number | string;
      message?: string;
      /** Sent as the Retry-After header. */
      retryAfter?: string;
    }
  | {
      kind: 'stream';
      /** Raw assistant content, used as is (malformed JSON, fences...). Wins over everything below. */
      content?: string;
      /** Suggestions to answer with (any count). Default: derived from the request. */
      suggestions?: string[];
      prediction?: FakePrediction;
      /** Wrap the JSON in a ```json fence, as some models do. */
      fence?: boolean;
      firstTokenDelayMs?: number;
      tokenIntervalMs?: number;
      /** Code points per content token. */
      tokenChars?: number;
      interrupt?: FakeInterruption;
    };

export interface FakeChatBody {
  model?: string;
  models?: string[];
  messages?: Array<{ role: string; content: string }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  response_format?: {
    type?: string;
    json_schema?: { name?: string; schema?: { properties?: { suggestions?: { maxItems?: number } } } };
  };
  temperature?: number;
  max_tokens?: number;
  [key: string]: unknown;
}

export interface FakeRequestRecord {
  index: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: FakeChatBody;
  kind: 'suggestions' | 'prediction';
  script: FakeScript;
  /** performance.now() timestamps. */
  receivedAt: number;
  firstTokenAt: number | null;
  endedAt: number | null;
  tokensSent: number;
  bytesWritten: number;
  /** Times res.write() returned false (its buffer was full; the client may just be slower than us). */
  writeBlocks: number;
  /** A blocked write waited longer than `stuckAfterMs` for drain: the client stopped reading. */
  isStuck: boolean;
  /** The client closed the connection before the response ended. */
  clientAborted: boolean;
  /** The script destroyed the socket itself (`hang-up`). */
  serverHungUp: boolean;
  completed: boolean;
}

export interface FakeOpenRouterOptions {
  host?: string;
  port?: number;
  /** Time from the request to the first content token (keep-alive comments meanwhile). */
  firstTokenDelayMs?: number;
  tokenIntervalMs?: number;
  tokenChars?: number;
  keepAliveIntervalMs?: number;
  /** How long a blocked write waits for drain before the fake reports `write-stuck` (default 200 ms). */
  stuckAfterMs?: number;
  /** Decides the script of a request when the queue is empty; undefined means the default reply. */
  respond?: (record: FakeRequestRecord) => FakeScript | undefined;
}

export const DEFAULT_PREDICTION: FakePrediction = { tendency: '合作', mood: '平静', tone: '随意' };

const KEEP_ALIVE = ': OPENROUTER PROCESSING\n\n';
// 64 KiB of keep-alive comments, so a flood fills socket buffers in few writes.
const FLOOD_CHUNK = KEEP_ALIVE.repeat(Math.ceil(65536 / KEEP_ALIVE.length));
const FLOOD_MAX_BYTES = 256 * 1024 * 1024;

class ClientGone extends Error {}

/** The `sender: content` text of the last message line in the prompt, to echo in default replies. */
function lastSpokenText(body: FakeChatBody): string {
  const users = (body.messages ?? []).filter((m) => m.role === 'user');
  const text = users.at(-1)?.content ?? '';
  const lines = text.split('\n').filter((line) => /^[^#\s][^:]{0,40}: \S/.test(line));
  const last = lines.at(-1);
  return last === undefined ? '你好' : last.slice(last.indexOf(': ') + 2).slice(0, 20);
}

function requestedCount(body: FakeChatBody): number {
  const max = body.response_format?.json_schema?.schema?.properties?.suggestions?.maxItems;
  if (typeof max === 'number' && max > 0) return max;
  const system = body.messages?.find((m) => m.role === 'system')?.content ?? '';
  const match = /(\d+)\s*条/.exec(system);
  return match ? Number(match[1]) : 3;
}

export function defaultSuggestions(body: FakeChatBody): string[] {
  const echo = lastSpokenText(body);
  return Array.from({ length: requestedCount(body) }, (_, i) => `(fake ${i + 1}) 关于“${echo}”，我想说第${i + 1}点。`);
}

function tokenize(content: string, tokenChars: number): string[] {
  const points = Array.from(content);
  const tokens: string[] = [];
  for (let i = 0; i < points.length; i += tokenChars) tokens.push(points.slice(i, i + tokenChars).join(''));
  return tokens;
}

export class FakeOpenRouter {
  readonly events = new EventEmitter();
  readonly requests: FakeRequestRecord[] = [];
  readonly #server: Server;
  readonly #options: Required<Omit<FakeOpenRouterOptions, 'respond' | 'host' | 'port'>>;
  readonly #respond: FakeOpenRouterOptions['respond'];
  readonly #queue: FakeScript[] = [];
  #gate: Promise<void> | null = null;
  #openGate: (() => void) | null = null;
  #url = '';

  private constructor(options: FakeOpenRouterOptions) {
    this.#options = {
      firstTokenDelayMs: options.firstTokenDelayMs ?? 30,
      tokenIntervalMs: options.tokenIntervalMs ?? 2,
      tokenChars: options.tokenChars ?? 4,
      keepAliveIntervalMs: options.keepAliveIntervalMs ?? 1000,
      stuckAfterMs: options.stuckAfterMs ?? 200,
    };
    this.#respond = options.respond;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!(err instanceof ClientGone)) res.destroy(err as Error);
      });
    });
  }

  static async start(options: FakeOpenRouterOptions = {}): Promise<FakeOpenRouter> {
    const fake = new FakeOpenRouter(options);
    fake.#server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
    await once(fake.#server, 'listening');
    const address = fake.#server.address() as AddressInfo;
    fake.#url = `http://${address.address}:${address.port}/api/v1`;
    return fake;
  }

  /** The base URL to give the engine (`.../api/v1`). */
  get baseUrl(): string {
    return this.#url;
  }

  /** Queues scripts for the next requests, in order; requests beyond the queue use `respond` or the default. */
  enqueue(...scripts: FakeScript[]): void {
    this.#queue.push(...scripts);
  }

  /** Holds every response's next write until resumeWrites(). */
  pauseWrites(): void {
    this.#gate ??= new Promise((resolve) => {
      this.#openGate = resolve;
    });
  }

  resumeWrites(): void {
    this.#openGate?.();
    this.#gate = null;
    this.#openGate = null;
  }

  async close(): Promise<void> {
    this.resumeWrites();
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 404, message: 'not found' } }));
      return;
    }
    let body: FakeChatBody;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FakeChatBody;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 400, message: 'body is not JSON' } }));
      return;
    }
    const record: FakeRequestRecord = {
      index: this.requests.length,
      method: req.method,
      url: req.url,
      headers: req.headers,
      body,
      kind: body.response_format?.json_schema?.name === 'opinion_prediction' ? 'prediction' : 'suggestions',
      script: { kind: 'stream' },
      receivedAt: performance.now(),
      firstTokenAt: null,
      endedAt: null,
      tokensSent: 0,
      bytesWritten: 0,
      writeBlocks: 0,
      isStuck: false,
      clientAborted: false,
      serverHungUp: false,
      completed: false,
    };
    record.script = this.#queue.shift() ?? this.#respond?.(record) ?? { kind: 'stream' };
    this.requests.push(record);
    const gone = new AbortController();
    res.on('close', () => {
      record.endedAt = performance.now();
      if (!res.writableFinished && !record.serverHungUp) {
        record.clientAborted = true;
        this.events.emit('client-abort', record);
      }
      gone.abort();
    });
    this.events.emit('request', record);

    const script = record.script;
    if (script.kind === 'status') {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (script.retryAfter !== undefined) headers['retry-after'] = script.retryAfter;
      res.writeHead(script.status, headers);
      res.end(JSON.stringify({ error: { code: script.code ?? script.status, message: script.message ?? `fake ${script.status}` } }));
      record.completed = true;
      this.events.emit('response-end', record);
      return;
    }
    await this.#stream(record, script, res, gone.signal);
  }

  async #stream(record: FakeRequestRecord, script: Extract<FakeScript, { kind: 'stream' }>, res: ServerResponse,
    gone: AbortSignal): Promise<void> {
    const model = record.body.model ?? 'fake/model';
    const id = `gen-fake-${record.index}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (fields: Record<string, unknown>): string =>
      `data: ${JSON.stringify({ id, provider: 'Fake', model, object: 'chat.completion.chunk', created, ...fields })}\n\n`;
    let content = script.content;
    if (content === undefined) {
      const json = record.kind === 'prediction'
        ? JSON.stringify({ prediction: script.prediction ?? DEFAULT_PREDICTION })
        : JSON.stringify({ suggestions: script.suggestions ?? defaultSuggestions(record.body) });
      content = script.fence ? `\`\`\`json\n${json}\n\`\`\`` : json;
    }
    const tokens = tokenize(content, script.tokenChars ?? this.#options.tokenChars);
    const interval = script.tokenIntervalMs ?? this.#options.tokenIntervalMs;

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    await this.#write(record, res, KEEP_ALIVE);
    let waitMs = script.firstTokenDelayMs ?? this.#options.firstTokenDelayMs;
    while (waitMs > 0) {
      const step = Math.min(waitMs, this.#options.keepAliveIntervalMs);
      await this.#sleep(step, gone);
      waitMs -= step;
      if (waitMs > 0) await this.#write(record, res, KEEP_ALIVE);
    }

    const interrupt = script.interrupt;
    for (let i = 0; i <= tokens.length; i++) {
      if (interrupt !== undefined && i === interrupt.tokens) {
        const next = await this.#interrupt(record, res, interrupt, chunk, gone);
        if (next === 'stop') return;
      }
      const token = tokens[i];
      if (token === undefined) break;
      if (i > 0 && interval > 0) await this.#sleep(interval, gone);
      await this.#write(record, res, chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: token }, finish_reason: null }] }));
      record.tokensSent++;
      record.firstTokenAt ??= performance.now();
    }
    await this.#write(record, res, chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: 'stop' }] }));
    const promptTokens = JSON.stringify(record.body.messages ?? []).length >> 2;
    await this.#write(record, res, chunk({
      choices: [],
      usage: { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length, cost: 0.000001 * (promptTokens + tokens.length) },
    }));
    await this.#write(record, res, 'data: [DONE]\n\n');
    res.end();
    record.completed = true;
    this.events.emit('response-end', record);
  }

  async #interrupt(record: FakeRequestRecord, res: ServerResponse, interrupt: FakeInterruption,
    chunk: (fields: Record<string, unknown>) => string, gone: AbortSignal): Promise<'stop' | 'continue'> {
    switch (interrupt.then) {
      case 'error-chunk':
        await this.#write(record, res, chunk({
          error: { code: interrupt.code ?? 'server_error', message: interrupt.message ?? 'Provider disconnected unexpectedly' },
          choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
        }));
        res.end();
        record.completed = true;
        this.events.emit('response-end', record);
        return 'stop';
      case 'finish-error':
        await this.#write(record, res, chunk({ choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }] }));
        await this.#write(record, res, 'data: [DONE]\n\n');
        res.end();
        record.completed = true;
        this.events.emit('response-end', record);
        return 'stop';
      case 'stall':
        this.events.emit('stall', record);
        if (!gone.aborted) await once(gone, 'abort');
        return 'stop';
      case 'hang-up':
        record.serverHungUp = true;
        res.destroy();
        return 'stop';
      case 'flood': {
        // Fill every buffer between us and the client's parser; a client that keeps reading takes it all.
        let bytes = 0;
        while (!record.isStuck && bytes < FLOOD_MAX_BYTES) {
          await this.#write(record, res, FLOOD_CHUNK);
          bytes += FLOOD_CHUNK.length;
        }
        return 'continue';
      }
    }
  }

  /** Writes and, when the socket buffer is full, waits for drain: the client's reading pace sets ours. */
  async #write(record: FakeRequestRecord, res: ServerResponse, text: string): Promise<void> {
    if (this.#gate !== null) await this.#gate;
    if (res.destroyed) throw new ClientGone();
    record.bytesWritten += Buffer.byteLength(text);
    if (res.write(text)) return;
    record.writeBlocks++;
    this.events.emit('write-blocked', record);
    // Whichever of drain/close comes first, the other listener is removed (no listener leak per write).
    const settled = new AbortController();
    const drained = Promise.race([once(res, 'drain', { signal: settled.signal }), once(res, 'close', { signal: settled.signal })]).finally(
      () => settled.abort(),
    );
    const stuck = new AbortController();
    const isDrained = await Promise.race([
      drained.then(() => true),
      delay(this.#options.stuckAfterMs, false, { signal: stuck.signal }),
    ]);
    stuck.abort();
    if (!isDrained) {
      record.isStuck = true;
      this.events.emit('write-stuck', record);
      await drained;
    }
    if (res.destroyed) throw new ClientGone();
    this.events.emit('write-drained', record);
  }

  async #sleep(ms: number, gone: AbortSignal): Promise<void> {
    try {
      await delay(ms, undefined, { signal: gone });
    } catch {
      throw new ClientGone();
    }
  }
}
