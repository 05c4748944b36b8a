import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { spawnServer, type SpawnedServer } from '../kit/spawn-server.js';
import { TestClient } from '../kit/ws-client.js';

// AUTH_API_KEYS_FILE rotates without a restart: the real process, a real SIGHUP.

const OLD_KEY = 'rotation-old-key-5b0f7d1e92ac';
const NEW_KEY = 'rotation-new-key-c81e44a09f3b';

async function status(port: number, key: string): Promise<number> {
  try {
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/conversation`, { headers: { Authorization: `Bearer ${key}` } });
    await client.close();
    return 101;
  } catch (err) {
    return (err as { statusCode: number }).statusCode;
  }
}

/** Resolves once the server's stdout has a line with `msg` after `from` characters (woken by each chunk). */
function waitForStdout(server: SpawnedServer, from: number, msg: string): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!server.stdout().slice(from).includes(`"msg":"${msg}"`)) return;
      server.child.stdout!.off('data', check);
      resolve();
    };
    server.child.stdout!.on('data', check);
    check();
  });
}

t.test('SIGHUP reloads AUTH_API_KEYS_FILE: the old key stops working, the new one works, no key is logged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'voxgate-keys-'));
  const keysFile = join(dir, 'keys.txt');
  writeFileSync(keysFile, `# rotated by the operator\n${OLD_KEY}\n`);
  const server = spawnServer({ STT_ENGINE: 'mock', LOG_LEVEL: 'trace', AUTH_API_KEYS_FILE: keysFile });
  t.teardown(() => server.kill());
  const port = await server.port;

  t.equal(await status(port, OLD_KEY), 101);
  t.equal(await status(port, NEW_KEY), 401);

  writeFileSync(keysFile, `${NEW_KEY}\n`);
  let from = server.stdout().length;
  server.kill('SIGHUP');
  await waitForStdout(server, from, 'SIGHUP: API keys reloaded');
  t.equal(await status(port, OLD_KEY), 401, 'the old key is refused');
  t.equal(await status(port, NEW_KEY), 101, 'the new key is accepted');

  // An unreadable file keeps the keys there were.
  rmSync(keysFile);
  from = server.stdout().length;
  server.kill('SIGHUP');
  await waitForStdout(server, from, 'SIGHUP: could not read AUTH_API_KEYS_FILE; the keys stay as they were');
  t.equal(await status(port, NEW_KEY), 101, 'still accepted after a failed reload');

  server.kill('SIGTERM');
  t.same(await server.exited, { code: 0, signal: null }, 'SIGHUP did not end the process; SIGTERM did, cleanly');
  t.notOk(server.stdout().includes(OLD_KEY) || server.stdout().includes(NEW_KEY), 'no key in the log');
  t.notOk(server.stderr().includes(OLD_KEY) || server.stderr().includes(NEW_KEY));
});
