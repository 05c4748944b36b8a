import WebSocket from 'ws';

export interface TestClientOptions extends WebSocket.ClientOptions {
  extensions?: 'all' | readonly string[];
  /** Sec-WebSocket-Protocol entries to offer (e.g. a `voxgate.token.<token>` credential). */
  protocols?: string[];
}

function withExtensions(url: string, extensions: 'all' | readonly string[]): string {
  const value = extensions === 'all' ? 'all' : extensions.join(',');
  return `${url}${url.includes('?') ? '&' : '?'}extensions=${encodeURIComponent(value)}`;
}
const DEFAULT_TIMEOUT_MS = 60_000;

export interface ServerEventJson {
  type: string;
  data: Record<string, any>;
}

/**
 * A WebSocket client for tests: every received event is queued, and `next()` / `waitFor()` take events
 * in arrival order, so a test can assert exactly what came and in which order, without sleeping.
 */
export class TestClient {
  readonly socket: WebSocket;
  readonly received: ServerEventJson[] = [];
  #cursor = 0;
  #waiters: Array<() => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.received.push(JSON.parse(data.toString()) as ServerEventJson);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  /**
   * Connects. `extensions` asks for extension events (`?extensions=...` on the URL: 'all', or names such
   * as ['transcript_partial']); without it the connection gets only the replaced backend's nine event types.
   */
  static connect(url: string, options: TestClientOptions = {}): Promise<TestClient> {
    const { extensions, protocols, ...wsOptions } = options;
    const target = extensions === undefined ? url : withExtensions(url, extensions);
    return new Promise((resolve, reject) => {
      const socket = protocols === undefined ? new WebSocket(target, wsOptions) : new WebSocket(target, protocols, wsOptions);
      const client = new TestClient(socket);
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
    });
  }

  send(type: string, data?: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(data === undefined ? { type } : { type, data }));
  }

  sendRaw(text: string | Buffer, binary = false): void {
    this.socket.send(text, { binary });
  }

  /**
   * The next event not yet taken, optionally of a given type (events before it are skipped). The timeout
   * only turns a hang into a failure that lists what did come: long enough for a loaded machine, shorter
   * than tap's per-file timeout.
   */
  async next(type?: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerEventJson> {
    return this.waitFor((event) => type === undefined || event.type === type, timeoutMs, type ?? 'any event');
  }

  /** The next event (from the cursor on) matching `predicate`; the cursor moves past it. */
  async waitFor(predicate: (event: ServerEventJson) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'matching event'): Promise<ServerEventJson> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#cursor < this.received.length) {
        const event = this.received[this.#cursor++]!;
        if (predicate(event)) return event;
      }
      if (this.socket.readyState === WebSocket.CLOSED) throw new Error(`connection closed while waiting for ${what}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${what}; received: ${JSON.stringify(this.received.map((e) => e.type))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The events received after the cursor, without waiting. */
  pending(): ServerEventJson[] {
    return this.received.slice(this.#cursor);
  }

  /** Starts a conversation and returns its session id. */
  async startConversation(data: Record<string, unknown> = { response_count: 3 }): Promise<string> {
    this.send('conversation_start', data);
    const created = await this.next('session_created');
    return created.data.session_id as string;
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close();
    return this.closed;
  }
}
