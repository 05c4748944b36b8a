// How many bytes on disk the SQLite store uses per byte of session text, and where they go.
// Run by hand: npx tsx bench/store-footprint.ts
// Options (environment): BENCH_SESSIONS (default 400), BENCH_HISTORY_BYTES (UTF-8 bytes of history text per
// session, default 900,000), BENCH_MESSAGE_CHARS (characters per history message, default 900),
// BENCH_TEXT (ascii | cjk, default both).
// Each session is created with store.create() exactly as conversation_start creates it, then closed
// and reopened so that the WAL is checkpointed; figures are taken while open (WAL included) and after.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import type { SessionRecord, StoredMessage } from '../src/store/session-store.js';
import { SqliteSessionStore } from '../src/store/sqlite-store.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 400);
const HISTORY_BYTES = Number(process.env.BENCH_HISTORY_BYTES ?? 900_000);
const MESSAGE_CHARS = Number(process.env.BENCH_MESSAGE_CHARS ?? 900);
const TEXTS = (process.env.BENCH_TEXT ?? 'ascii,cjk').split(',');

function record(id: string, text: 'ascii' | 'cjk'): { record: SessionRecord; textBytes: number } {
  const unit = text === 'ascii' ? 'a' : '语';
  const bytesPerChar = Buffer.byteLength(unit);
  const messages: StoredMessage[] = [];
  let textBytes = 0;
  const now = new Date().toISOString();
  for (let i = 0; textBytes < HISTORY_BYTES; i++) {
    const content = unit.repeat(MESSAGE_CHARS);
    const message: StoredMessage = { messageId: `h${i}`, sender: 'other', content, createdAt: now, type: 'history' };
    textBytes += MESSAGE_CHARS * bytesPerChar;
    messages.push(message);
  }
  return {
    record: {
      id,
      createdAt: now,
      updatedAt: now,
      scenarioDescription: 'bench',
      responseCount: 3,
      userProfile: null,
      targetProfile: null,
      historyMessages: messages,
      messages: [],
      focusedMessageIds: [],
      modifications: [],
      recording: null,
    },
    textBytes,
  };
}

function filesBytes(dir: string): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const name of readdirSync(dir)) sizes[name] = statSync(join(dir, name)).size;
  return sizes;
}

const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

for (const text of TEXTS as Array<'ascii' | 'cjk'>) {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-footprint-'));
  try {
    const store = new SqliteSessionStore({ dir, logger: pino({ level: 'silent' }) });
    let textBytes = 0;
    const started = performance.now();
    for (let i = 0; i < SESSIONS; i++) {
      const built = record(`s-${i}`, text);
      textBytes += built.textBytes;
      store.create(built.record);
    }
    const seconds = (performance.now() - started) / 1000;
    const open = filesBytes(dir);
    store.close();
    const closed = filesBytes(dir);
    const db = new Database(join(dir, 'voxgate.db'), { readonly: true });
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    let tables = '';
    try {
      const rows = db
        .prepare('SELECT name, SUM(pgsize) AS bytes, SUM(payload) AS payload, SUM(unused) AS unused FROM dbstat GROUP BY name ORDER BY bytes DESC')
        .all() as Array<{ name: string; bytes: number; payload: number; unused: number }>;
      tables = rows.map((r) => `${r.name}: ${mb(r.bytes)} (payload ${mb(r.payload)}, unused ${mb(r.unused)})`).join('; ');
    } catch (err) {
      tables = `dbstat unavailable: ${(err as Error).message}`;
    }
    db.close();
    const openTotal = Object.values(open).reduce((a, b) => a + b, 0);
    console.log(
      JSON.stringify(
        {
          text,
          sessions: SESSIONS,
          messageChars: MESSAGE_CHARS,
          textBytes: mb(textBytes),
          seconds: Number(seconds.toFixed(1)),
          whileOpen: Object.fromEntries(Object.entries(open).map(([k, v]) => [k, mb(v)])),
          whileOpenRatio: Number((openTotal / textBytes).toFixed(2)),
          afterClose: Object.fromEntries(Object.entries(closed).map(([k, v]) => [k, mb(v)])),
          afterCloseRatio: Number((closed['voxgate.db']! / textBytes).toFixed(2)),
          pageSize,
          pages,
          freePages: free,
          tables,
        },
        null,
        2,
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
