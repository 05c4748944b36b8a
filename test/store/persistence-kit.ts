// Helpers for the persistence end-to-end tests (test/e2e/persistence*.test.ts): a real server process on
// a data directory, restarted on the same one, and waits on its log lines instead of on timers.
import type { Test } from 'tap';
import { spawnServer, type SpawnedServer } from '../kit/spawn-server.js';
import { TestClient, type TestClientOptions } from '../kit/ws-client.js';

export interface RunningServer {
  server: SpawnedServer;
  port: number;
  connect(options?: TestClientOptions): Promise<TestClient>;
  /** Resolves with the first log line (parsed) matching `predicate`, including lines already written. */
  logLine(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

/** Starts src/main.ts on `dataDir` with the mock engines unless `env` says otherwise; killed at teardown. */
export async function startOn(t: Test, dataDir: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const server = spawnServer({
    SESSION_PERSISTENCE_DIR: dataDir,
    STT_ENGINE: 'mock',
    AUTO_SUGGEST: 'false',
    MOCK_LLM_DELTA_DELAY_MS: '1',
    LOG_LEVEL: 'info',
    ...env,
  });
  t.teardown(() => server.kill());
  const port = await server.port;
  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((client) => client.close())));
  return {
    server,
    port,
    connect: async (options = {}) => {
      const client = await TestClient.connect(`ws://127.0.0.1:${port}/conversation`, options);
      clients.push(client);
      return client;
    },
    logLine: (predicate) => server.logLine(predicate),
  };
}

/** SIGKILL: no shutdown, no close(), no checkpoint. Resolves once the process is gone. */
export async function crash(running: RunningServer): Promise<void> {
  running.server.kill('SIGKILL');
  const { signal } = await running.server.exited;
  if (signal !== 'SIGKILL') throw new Error(`expected the server to die of SIGKILL, got ${signal}`);
}

/** A round trip that proves every earlier event of this session was handled (events run in order). */
export async function settled(client: TestClient, sessionId: string): Promise<Array<Record<string, unknown>>> {
  client.send('get_message_history', { session_id: sessionId });
  const history = await client.waitFor((e) => e.type === 'message_history_response' && e.data.session_id === sessionId);
  return history.data.messages as Array<Record<string, unknown>>;
}
