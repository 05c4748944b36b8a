import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SqliteSessionStore } from '../../src/store/sqlite-store.js';
import { capturedLogger, fullRecord, openStore, rawConnection } from './store-fixtures.js';

// What only the durable store does: keep sessions across a reopen and a SIGKILL, refuse a directory or
// file it cannot use, and report write failures as STORAGE_ERROR without losing its footing.

function canRun(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether this machine lets the tests mount a tmpfs / set the immutable flag (root with capabilities). */
function probe(run: (dir: string) => boolean): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-probe-'));
  try {
    return run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const canMount = probe((dir) => canRun('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]) && canRun('umount', [dir]));
const canChattr = probe((dir) => canRun('chattr', ['+i', dir]) && canRun('chattr', ['-i', dir]));
const needsMount = { skip: canMount ? false : 'mounting a tmpfs is not allowed here (needs root with CAP_SYS_ADMIN)' };
const needsChattr = { skip: canChattr ? false : 'chattr +i is not supported here (needs root and ext4/xfs)' };

/** A directory of our own (not t.testdir(), which tap removes before our teardowns have undone mounts). */
function ownDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Mounts a small tmpfs, unmounted at teardown. */
function tmpfs(t: Test, sizeBytes: number, options: string[] = []): string {
  const dir = ownDir(t);
  execFileSync('mount', ['-t', 'tmpfs', '-o', [`size=${sizeBytes}`, ...options].join(','), 'tmpfs', dir]);
  // Teardowns run last-in first-out: unmounted before ownDir removes the directory.
  t.teardown(() => {
    execFileSync('umount', ['-l', dir]);
  });
  return dir;
}

t.test('a closed and reopened store gives back every session', async (t) => {
  const dir = t.testdir();
  const first = new SqliteSessionStore({ dir, logger: capturedLogger().logger });
  first.create(fullRecord('a'));
  first.create(fullRecord('b', { userProfile: null, recording: null }));
  first.close();
  first.close(); // idempotent
  t.throws(() => first.load('a'), { code: 'STORAGE_ERROR' }, 'a closed store refuses work');
  const second = openStore(t, { dir });
  t.same(second.load('a'), fullRecord('a'));
  t.same(second.load('b'), fullRecord('b', { userProfile: null, recording: null }));
  t.match(second.health(), { kind: 'sqlite', status: 'healthy', path: join(dir, 'voxgate.db'), sessions: 2, lastError: null });
});

t.test('SIGKILL right after the writes returned: a new process finds every one of them', async (t) => {
  const dir = t.testdir();
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/crash-writer.ts'), dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
  t.equal(signal, 'SIGKILL');
  t.equal(stdout, 'committed\n');
  t.ok(existsSync(join(dir, 'voxgate.db-wal')), 'the commits are still in the WAL (no checkpoint ran)');
  const record = openStore(t, { dir }).load('crashed');
  t.match(record, {
    responseCount: 5,
    focusedMessageIds: ['h-1'],
    modifications: ['warmer'],
    messages: [{ messageId: 'usr_001', content: 'yes', type: 'selected_response' }],
    recording: { messageId: 'msg_002', sender: 'other', segments: ['alpha', 'bravo'] },
    updatedAt: '2025-05-01T00:00:06.000Z',
  });
  t.same(record!.userProfile, fullRecord('x').userProfile, 'profile exactly as stored');
});

t.test('the file is in WAL mode and deleting a session deletes all its rows', async (t) => {
  const store = openStore(t);
  store.create(fullRecord('s'));
  const raw = rawConnection(t, store.path);
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  store.delete('s');
  for (const table of ['sessions', 'messages', 'modifications', 'recordings', 'recording_segments']) {
    t.equal((raw.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n, 0, `${table} empty`);
  }
});

t.test('start-up refuses a directory that cannot be created, naming the path and the cause', async (t) => {
  const file = join(t.testdir({ 'file.txt': 'not a directory' }), 'file.txt');
  const dir = join(file, 'sub');
  const err = t.throws(() => new SqliteSessionStore({ dir, logger: capturedLogger().logger })) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.match(err.message, dir);
  t.match(err.details, /ENOTDIR/);
  t.match(err.cause, { code: 'ENOTDIR' });
});

t.test('start-up refuses a read-only directory (a read-only mount: stops root too)', needsMount, async (t) => {
  const dir = tmpfs(t, 1024 * 1024, ['ro']);
  const err = t.throws(() => new SqliteSessionStore({ dir: join(dir, 'data'), logger: capturedLogger().logger })) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.match(err.message, join(dir, 'data'));
  t.match(err.details, /EROFS/);
  const existing = t.throws(() => new SqliteSessionStore({ dir, logger: capturedLogger().logger })) as Error & { code: string; details: string };
  t.match(existing, { code: 'STORAGE_ERROR', message: join(dir, 'voxgate.db'), details: /SQLITE_CANTOPEN/ }, 'an existing read-only directory');
});

t.test('start-up refuses an immutable directory (chattr +i: stops root too)', needsChattr, async (t) => {
  const dir = ownDir(t);
  execFileSync('chattr', ['+i', dir]);
  t.teardown(() => {
    execFileSync('chattr', ['-i', dir]);
  });
  const err = t.throws(() => new SqliteSessionStore({ dir, logger: capturedLogger().logger })) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.match(err.message, join(dir, 'voxgate.db'));
  t.match(err.details, /SQLITE_CANTOPEN/);
});

t.test('a file that is not a database stops start-up and is left exactly as it was', async (t) => {
  const garbage = Buffer.from('this is not an SQLite database, but it is somebody\'s data\n'.repeat(200));
  const dir = t.testdir({ 'voxgate.db': garbage });
  const err = t.throws(() => new SqliteSessionStore({ dir, logger: capturedLogger().logger })) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.match(err.message, join(dir, 'voxgate.db'));
  t.match(err.message, /move it aside/);
  t.match(err.details, /SQLITE_NOTADB/);
  t.same(readFileSync(join(dir, 'voxgate.db')), garbage, 'not modified');
  t.notOk(existsSync(join(dir, 'voxgate.db-wal')), 'no WAL created next to it');
});

t.test('a zero-byte database file stops start-up like any other damage, and is left as it was', async (t) => {
  // Issue 12 #10: SQLite opens an empty file as an empty database (and resets a WAL found next to it), so
  // a truncated voxgate.db used to start an empty store without a word.
  const dir = t.testdir({ 'voxgate.db': '' });
  const err = t.throws(() => new SqliteSessionStore({ dir, logger: capturedLogger().logger })) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.match(err.message, join(dir, 'voxgate.db'));
  t.match(err.message, /empty \(0 bytes\)/);
  t.match(err.message, /move it aside/);
  t.match(err.details, /EMPTY_DATABASE_FILE/);
  t.equal(statSync(join(dir, 'voxgate.db')).size, 0, 'not written');
  t.notOk(existsSync(join(dir, 'voxgate.db-wal')), 'no WAL created next to it');

  const withWal = t.testdir({ 'voxgate.db': '', 'voxgate.db-wal': Buffer.alloc(8192, 1) });
  t.throws(() => new SqliteSessionStore({ dir: withWal, logger: capturedLogger().logger }), { code: 'STORAGE_ERROR', details: /EMPTY_DATABASE_FILE/ });
  t.same(readFileSync(join(withWal, 'voxgate.db-wal')), Buffer.alloc(8192, 1), 'the WAL next to it is untouched too');
});

t.test('a database with damaged pages stops start-up (integrity check)', async (t) => {
  const dir = t.testdir();
  const store = new SqliteSessionStore({ dir, logger: capturedLogger().logger });
  for (let i = 0; i < 50; i++) store.create(fullRecord(`s-${i}`));
  store.close();
  const path = join(dir, 'voxgate.db');
  const pageSize = 4096;
  t.ok(statSync(path).size > 6 * pageSize, 'several pages to damage');
  // Overwrite pages 3-5 (table and index b-tree pages), keeping the header page intact.
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(3 * pageSize, 0xa5), 0, 3 * pageSize, 2 * pageSize);
  closeSync(fd);
  const err = t.throws(() => new SqliteSessionStore({ dir, logger: capturedLogger().logger })) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.match(err.details, /SQLITE_CORRUPT/);
});

t.test('a write that waits too long for a lock: STORAGE_ERROR, nothing changed, health degraded then recovered', async (t) => {
  const { logger, lines } = capturedLogger();
  const store = openStore(t, { busyTimeoutMs: 20, logger });
  store.create(fullRecord('s', { recording: null }));
  const before = store.load('s');
  const other = rawConnection(t, store.path);
  other.exec('BEGIN IMMEDIATE'); // another writer holds the lock

  const err = t.throws(() => store.update('s', { responseCount: 1 }, '2030-01-01T00:00:00.000Z')) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.equal(err.details, 'sqlite: SQLITE_BUSY');
  t.match(err.cause, { code: 'SQLITE_BUSY' });
  t.equal(store.health().status, 'degraded');
  t.throws(() => store.appendModification('s', 'x', '2030-01-01T00:00:00.000Z'), { code: 'STORAGE_ERROR' });
  t.throws(() => store.appendMessage('s', fullRecord('x').messages[0]!, '2030-01-01T00:00:00.000Z'), { code: 'STORAGE_ERROR' });
  t.match(store.health(), { status: 'unavailable', lastError: /SQLITE_BUSY/ }, 'three failures in a row: unavailable');
  t.same(store.load('s'), before, 'reads still work and nothing changed');

  other.exec('ROLLBACK');
  store.update('s', { responseCount: 1 }, '2030-01-01T00:00:01.000Z');
  t.match(store.health(), { status: 'degraded', lastError: /SQLITE_BUSY/ }, 'recovering after one good write');
  for (let i = 0; i < 4; i++) store.appendModification('s', `m${i}`, '2030-01-01T00:00:02.000Z');
  t.match(store.health(), { status: 'healthy', lastError: /SQLITE_BUSY/ }, 'healthy after five; the last error stays visible');
  t.equal(store.load('s')!.responseCount, 1);
  t.ok(lines.some((line) => line.msg === 'session store writes are failing' && line.status === 'degraded'), 'failure logged');
  t.ok(lines.some((line) => line.msg === 'session store recovered: writes succeed again'), 'recovery logged');
});

t.test('disk full (a small tmpfs): STORAGE_ERROR SQLITE_FULL; writes work again once there is room', needsMount, async (t) => {
  const mount = tmpfs(t, 512 * 1024);
  const store = openStore(t, { dir: join(mount, 'data') });
  store.create(fullRecord('s', { recording: null }));
  writeFileSync(join(mount, 'filler'), Buffer.alloc(0));
  // Fill the file system to the last byte with a file the test controls.
  const fd = openSync(join(mount, 'filler'), 'w');
  try {
    const block = Buffer.alloc(4096);
    for (;;) writeSync(fd, block);
  } catch (err) {
    t.match(err, { code: 'ENOSPC' });
  } finally {
    closeSync(fd);
  }
  const big = 'x'.repeat(256 * 1024); // more than any free space the WAL may still have
  const err = t.throws(() => store.update('s', { scenarioDescription: big }, '2030-01-01T00:00:00.000Z')) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.equal(err.details, 'sqlite: SQLITE_FULL');
  t.equal(store.load('s')!.scenarioDescription, fullRecord('s').scenarioDescription, 'unchanged');
  t.match(store.health(), { status: 'degraded', lastError: /SQLITE_FULL/ });

  writeFileSync(join(mount, 'filler'), ''); // the operator frees space
  store.update('s', { scenarioDescription: 'after' }, '2030-01-01T00:00:01.000Z');
  t.equal(store.load('s')!.scenarioDescription, 'after');
});

t.test('I/O errors on a live store (chattr +i on the files): STORAGE_ERROR, and it recovers', needsChattr, async (t) => {
  const store = openStore(t);
  store.create(fullRecord('s', { recording: null }));
  const files = [store.path, `${store.path}-wal`];
  execFileSync('chattr', ['+i', ...files]);
  let isImmutable = true;
  const release = (): void => {
    if (isImmutable) execFileSync('chattr', ['-i', ...files]);
    isImmutable = false;
  };
  t.teardown(release);
  const err = t.throws(() => store.appendModification('s', 'never stored', '2030-01-01T00:00:00.000Z')) as Error & { code: string; details: string };
  t.equal(err.code, 'STORAGE_ERROR');
  t.match(err.details, /^sqlite: SQLITE_(IOERR|READONLY|CANTOPEN|PERM)/);
  release();
  store.appendModification('s', 'stored', '2030-01-01T00:00:01.000Z');
  t.same(store.load('s')!.modifications, [...fullRecord('s').modifications, 'stored'], 'only the write that succeeded');
});
