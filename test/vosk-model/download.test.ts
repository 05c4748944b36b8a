import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { downloadModel } from '../../src/vosk-model/download.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { zipDirectory, zipEntries } from './zip-fixture.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'voxgate-download-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Serves `files` (path -> body) on 127.0.0.1, 404 for anything else. */
async function serve(t: Test, files: ReadonlyMap<string, Buffer>): Promise<{ baseUrl: string; requests: string[] }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/zip' });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}/vosk/models`, requests };
}

t.test('a zipped tone model is downloaded, unpacked into destDir/name and checked', async (t) => {
  const root = await tempDir(t);
  await writeToneModel(join(root, 'source'));
  const zip = await zipDirectory(join(root, 'source'), 'vosk-model-tone-1');
  const { baseUrl, requests } = await serve(t, new Map([['/vosk/models/vosk-model-tone-1.zip', zip]]));
  const destDir = join(root, 'model');

  const result = await downloadModel('vosk-model-tone-1', { baseUrl, destDir });

  t.same(requests, ['/vosk/models/vosk-model-tone-1.zip']);
  t.equal(result.dir, join(destDir, 'vosk-model-tone-1'));
  t.equal(result.zipBytes, zip.length);
  t.match(result.check, { ok: true, text: 'alpha bravo charlie delta echo' });
  t.ok(existsSync(join(destDir, 'vosk-model-tone-1', 'graph', 'HCLG.fst')));
  t.same(await readdir(destDir), ['vosk-model-tone-1'], 'no staging files are left behind');
});

t.test('an HTTP error names the status and leaves nothing behind', async (t) => {
  const root = await tempDir(t);
  const { baseUrl } = await serve(t, new Map());
  const destDir = join(root, 'model');
  await t.rejects(downloadModel('vosk-model-missing', { baseUrl, destDir }), {
    code: 'MODEL_DOWNLOAD_FAILED',
    message: /HTTP 404/,
    retryable: false,
  });
  t.same(await readdir(destDir), []);
});

t.test('a zip without a single top-level folder is refused', async (t) => {
  const root = await tempDir(t);
  const zip = zipEntries([{ name: 'loose.txt', data: Buffer.from('x') }]);
  const { baseUrl } = await serve(t, new Map([['/vosk/models/flat.zip', zip]]));
  await t.rejects(downloadModel('flat', { baseUrl, destDir: join(root, 'model') }), {
    code: 'MODEL_INVALID',
    message: /one top-level folder/,
  });
});

t.test('an existing model directory and unsafe names are refused before any request', async (t) => {
  const root = await tempDir(t);
  await writeToneModel(join(root, 'model', 'present'));
  const { baseUrl, requests } = await serve(t, new Map());
  await t.rejects(downloadModel('present', { baseUrl, destDir: join(root, 'model') }), { code: 'MODEL_INVALID' });
  await t.rejects(downloadModel('../escape', { baseUrl, destDir: join(root, 'model') }), { code: 'MODEL_INVALID' });
  t.same(requests, []);
});
