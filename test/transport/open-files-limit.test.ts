import { readFileSync } from 'node:fs';
import t from 'tap';
import { connectionsWithinLimit, openFilesSoftLimit } from '../../src/transport/open-files-limit.js';
import { spawnServer } from '../kit/spawn-server.js';
import { TestClient } from '../kit/ws-client.js';

// At the open-files limit uWebSockets.js spins on accept() (EMFILE) and clients time out: the server
// must cap its connections below the limit and refuse the rest with 503.

t.test('reading the soft limit', async (t) => {
  t.equal(openFilesSoftLimit('Max open files            1024                 4096                 files     \n'), 1024);
  t.equal(openFilesSoftLimit('Max open files            unlimited            unlimited            files\n'), Infinity);
  t.equal(openFilesSoftLimit(null), null);
  t.equal(connectionsWithinLimit(20_000, 512), 20_000 - 768);
  t.equal(connectionsWithinLimit(600, 512), 300, 'the reserve is at most half the limit');
});

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

t.test('MAX_CONNECTIONS above the open-files limit: lowered, the rest refused with 503, no busy loop', async (t) => {
  const server = spawnServer({ STT_ENGINE: 'mock', MAX_CONNECTIONS: '1000', LOG_LEVEL: 'info' }, { openFilesLimit: 600 });
  t.teardown(() => server.kill());
  const port = await server.port;
  t.match(server.stdout(), /"configured":1000,"effective":300,"openFilesLimit":600[^\n]*MAX_CONNECTIONS lowered/);
  const health = (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as Record<string, any>;
  t.equal(health.transport.max_connections, 300);

  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((client) => client.close())));
  for (let i = 0; i < 300; i++) clients.push(await TestClient.connect(`ws://127.0.0.1:${port}/ws`));
  await t.rejects(TestClient.connect(`ws://127.0.0.1:${port}/ws`), { message: 'HTTP 503' }, 'the next one is refused, not left hanging');

  // Real time is the subject: CPU used over one second of wall time. Other load can only lower the
  // server's share, so this never fails by chance (on a very busy machine it could miss a spin).
  const before = cpuSeconds(server.child.pid!);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.ok(cpuSeconds(server.child.pid!) - before < 0.3, 'the server idles with every connection open');
});
