// Clients of vosk-server's WebSocket protocol, written after the families that use it (vosk-server's
// websocket/test*.py, its Node and browser samples, Asterisk's res_speech_vosk). The same client drives
// voxgate's /asr and vosk-server itself (the compatibility test and bench/asr-vs-vosk-server.ts).
import WebSocket from 'ws';

export interface AsrClientOptions {
  /** Sec-WebSocket-Protocol entries to offer (Asterisk offers `ws`). */
  protocols?: string[];
  headers?: Record<string, string>;
}

export class AsrClient {
  readonly socket: WebSocket;
  /** Every text reply, in arrival order, exactly as received. */
  readonly replies: string[] = [];
  /** performance.now() at which each reply arrived. */
  readonly replyTimes: number[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #cursor = 0;
  #closeInfo: { code: number; reason: string } | null = null;
  #waiters: Array<() => void> = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.replies.push(data.toString());
      this.replyTimes.push(performance.now());
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.#closeInfo = { code, reason: reason.toString() };
        resolve(this.#closeInfo);
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  static connect(url: string, options: AsrClientOptions = {}): Promise<AsrClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {} });
      const client = new AsrClient(socket);
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) =>
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode, headers: res.headers })),
      );
    });
  }

  /** The subprotocol the server chose ('' for none). */
  get protocol(): string {
    return this.socket.protocol;
  }

  sendText(text: string): void {
    this.socket.send(text);
  }

  sendAudio(pcm: Uint8Array): void {
    this.socket.send(pcm, { binary: true });
  }

  /** The next reply not yet taken; rejects when the socket closes first. */
  async nextReply(): Promise<string> {
    while (this.#cursor >= this.replies.length) {
      if (this.socket.readyState === WebSocket.CLOSED) throw new Error(`closed before the next reply: ${JSON.stringify(this.#closeInfo)}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.replies[this.#cursor++]!;
  }

  close(): void {
    this.socket.close();
  }
}

export interface AsrRun {
  replies: string[];
  close: { code: number; reason: string };
  protocol: string;
}

/** vosk-server's test.py: optional config, then send a frame and wait for its reply, then eof. */
export async function runLockstep(url: string, frames: readonly Uint8Array[], options: AsrClientOptions & { config?: object; resets?: ReadonlySet<number> } = {}): Promise<AsrRun> {
  const client = await AsrClient.connect(url, options);
  if (options.config !== undefined) client.sendText(JSON.stringify({ config: options.config }));
  for (let i = 0; i < frames.length; i++) {
    client.sendAudio(frames[i]!);
    await client.nextReply();
    if (options.resets?.has(i)) {
      client.sendText('{"reset" : 1}');
      await client.nextReply();
    }
  }
  client.sendText('{"eof" : 1}');
  await client.nextReply();
  const close = await client.closed;
  return { replies: client.replies, close, protocol: client.protocol };
}

/** vosk-server's Node sample: every chunk of a file sent at once, then eof; replies read as they come. */
export async function runFireAndForget(url: string, chunks: readonly Uint8Array[], options: AsrClientOptions & { config?: object } = {}): Promise<AsrRun> {
  const client = await AsrClient.connect(url, options);
  if (options.config !== undefined) client.sendText(JSON.stringify({ config: options.config }));
  for (const chunk of chunks) client.sendAudio(chunk);
  client.sendText('{"eof" : 1}');
  const close = await client.closed;
  return { replies: client.replies, close, protocol: client.protocol };
}

/** A 44-byte RIFF/WAVE header for 16-bit mono PCM, as a file on disk starts. */
export function wavFile(pcm: Uint8Array, sampleRateHz: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.byteLength, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRateHz, 24);
  header.writeUInt32LE(sampleRateHz * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.byteLength, 40);
  return Buffer.concat([header, pcm]);
}

/** The texts of the results among `replies` (partials left out), non-empty ones joined: the transcript. */
export function transcriptOf(replies: readonly string[]): string {
  const texts: string[] = [];
  for (const reply of replies) {
    const parsed = JSON.parse(reply) as { text?: string; alternatives?: Array<{ text: string }> };
    const text = parsed.text ?? parsed.alternatives?.[0]?.text;
    if (text !== undefined && text !== '') texts.push(text);
  }
  return texts.join(' ');
}
