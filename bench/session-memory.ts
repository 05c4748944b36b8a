// The memory one client can make the server hold with sessions: the attack of issue 12 #3 (400 sessions
// of ~900 KB of history each, as fast as the server answers, each connection closed after its sessions),
// against a real voxgate in a child process (so its RSS is its own). Run by hand:
//   npx tsx bench/session-memory.ts
// Options (environment): BENCH_SESSIONS (default 400), BENCH_SESSIONS_PER_CONNECTION (default 8),
// BENCH_HISTORY_MESSAGES (default 1000), BENCH_MESSAGE_CHARS (ASCII, default 900); the session settings
// in SERVER_SETTINGS pass through (e.g. MAX_SESSIONS_PER_ADDRESS=1000 to see memory without that limit).
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer } from '../test/kit/spawn-server.js';
import { TestClient } from '../test/kit/ws-client.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 400);
const PER_CONNECTION = Number(process.env.BENCH_SESSIONS_PER_CONNECTION ?? 8);
const HISTORY_MESSAGES = Number(process.env.BENCH_HISTORY_MESSAGES ?? 1000);
const MESSAGE_CHARS = Number(process.env.BENCH_MESSAGE_CHARS ?? 900);

// Server settings this run passes through from its own environment.
const SERVER_SETTINGS = ['MAX_SESSIONS_PER_ADDRESS', 'MAX_SESSIONS', 'SESSION_MEMORY_MAX_MB', 'SESSION_PERSISTENCE_ENABLED', 'WEBSOCKET_MAX_MESSAGE_SIZE'];

function pickServerSettings(): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const key of SERVER_SETTINGS) if (process.env[key] !== undefined) settings[key] = process.env[key]!;
  return settings;
}

const dir = mkdtempSync(join(tmpdir(), 'voxgate-session-memory-'));
const server = spawnServer({ STT_ENGINE: 'mock', SESSION_PERSISTENCE_DIR: dir, AUTO_SUGGEST: 'false', ...pickServerSettings() });
try {
  const port = await server.port;
  const rssMb = async (): Promise<number> => {
    const status = await readFile(`/proc/${server.child.pid}/status`, 'utf8');
    return Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024);
  };
  const health = async () => ((await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as Record<string, any>).services.session_manager;
  const before = await rssMb();
  const history = Array.from({ length: HISTORY_MESSAGES }, (_, i) => ({ message_id: `h${i}`, sender: 'other', content: 'a'.repeat(MESSAGE_CHARS) }));
  const codes = new Map<string, number>();
  let created = 0;
  const started = performance.now();
  for (let done = 0; done < SESSIONS; ) {
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/conversation`);
    for (let i = 0; i < PER_CONNECTION && done < SESSIONS; i++, done++) {
      client.send('conversation_start', { response_count: 3, history_messages: history });
      const reply = await client.next();
      if (reply.type === 'session_created') created++;
      else codes.set(String(reply.data.error_code), (codes.get(String(reply.data.error_code)) ?? 0) + 1);
    }
    await client.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const sessions = await health();
  console.log(
    JSON.stringify({
      sessionsTried: SESSIONS,
      created,
      refused: Object.fromEntries(codes),
      seconds: Number(seconds.toFixed(1)),
      rssBeforeMb: before,
      rssAfterMb: await rssMb(),
      activeSessions: sessions.active_sessions,
      heldBytes: sessions.held_bytes,
      storedSessions: sessions.store.sessions,
    }),
  );
} finally {
  server.kill();
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
}
