import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { startVoxgate, type Voxgate, type VoxgateParts } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/load.js';
import { TestClient, type TestClientOptions } from './ws-client.js';

export interface TestServer {
  voxgate: Voxgate;
  config: Config;
  port: number;
  httpUrl: string;
  wsUrl: (path?: string) => string;
  /** Every log line the server wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface TestServerKit {
  /**
   * Fault injection at a process edge: when it returns true for a log call's message, that log call
   * throws (as a failing logger transport would), inside whatever server code made it.
   */
  failLogCall?: (message: string) => boolean;
}

/**
 * Starts a real voxgate in this process on a free loopback port, with the mock engines unless `env` or
 * `parts` say otherwise. Log lines are captured (not printed) so tests can assert on them.
 */
export async function startTestServer(env: Record<string, string> = {}, parts: VoxgateParts = {}, kit: TestServerKit = {}): Promise<TestServer> {
  const config = loadConfig({
    envFile: null,
    env: {
      HOST: '127.0.0.1',
      PORT: '0',
      STT_ENGINE: 'mock',
      SESSION_PERSISTENCE_ENABLED: 'false',
      MOCK_LLM_DELTA_DELAY_MS: '2',
      SHUTDOWN_DRAIN_MS: '0',
      LOG_LEVEL: 'debug',
      ...env,
    },
  });
  const logs: Array<Record<string, unknown>> = [];
  const logWaiters = new Set<(line: Record<string, unknown>) => void>();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (!text.trim()) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        logs.push(line);
        for (const wake of logWaiters) wake(line);
      }
      callback();
    },
  });
  const waitForLog = (predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    const found = logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const wake = (line: Record<string, unknown>): void => {
        if (!predicate(line)) return;
        logWaiters.delete(wake);
        resolve(line);
      };
      logWaiters.add(wake);
    });
  };
  const failLogCall = kit.failLogCall;
  const logger: Logger = pino(
    {
      level: config.logLevel,
      hooks: failLogCall
        ? {
            logMethod(args, method) {
              const message = args.find((arg): arg is string => typeof arg === 'string') ?? '';
              if (failLogCall(message)) throw new Error(`injected fault: log call "${message}" failed`);
              method.apply(this, args);
            },
          }
        : {},
    },
    sink,
  );
  const voxgate = await startVoxgate(config, logger, parts);
  const port = voxgate.port;
  return {
    voxgate,
    config,
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: (path = '/conversation') => `ws://127.0.0.1:${port}${path}`,
    logs,
    waitForLog,
    close: () => voxgate.shutdown(),
  };
}

/** A test server (closed at teardown) with one connected client that started a conversation. */
export async function startWithConversation(
  t: { teardown(fn: () => unknown): void },
  env: Record<string, string> = {},
  conversation: Record<string, unknown> = { response_count: 3 },
  parts: VoxgateParts = {},
  clientOptions: TestClientOptions = {},
): Promise<{ server: TestServer; client: TestClient; sessionId: string }> {
  const server = await startTestServer(env, parts);
  t.teardown(() => server.close());
  const client = await TestClient.connect(server.wsUrl(), clientOptions);
  t.teardown(() => client.close());
  const sessionId = await client.startConversation(conversation);
  return { server, client, sessionId };
}
