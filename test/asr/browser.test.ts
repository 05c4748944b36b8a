// vosk-server's browser sample against /asr in a real Chromium: the page's own WebSocket (its handshake,
// Origin header and subprotocol rules), a config at 8 kHz as the sample's AudioContext uses, and Int16
// buffers of 4096 samples sent as they fill, without waiting for replies. The audio is generated tone
// speech handed to the page (a fake microphone would go through the browser's resampler, which is not
// what this test is about; test/e2e/demo-browser.test.ts covers that path).
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import t from 'tap';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { transcriptOf } from '../kit/asr-client.js';
import { startTestServer } from '../kit/start-server.js';
import { tones } from '../stt/vosk-fixture.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const INSTALL = 'apt-get update && apt-get install -y chromium';
const WORDS = ['alpha', 'charlie', 'bravo'];

interface PageRun {
  replies: string[];
  closeCode: number;
  protocol: string;
}

if (!existsSync(CHROMIUM)) {
  if (process.env.CI) t.fail(`${CHROMIUM} is missing: /asr cannot be tested from a browser. Install it with: ${INSTALL}`);
  else t.plan(0, `${CHROMIUM} is missing (install it with: ${INSTALL}); in CI this fails`);
} else {
  t.setTimeout(120_000);
  t.test('the browser sample\'s protocol from Chromium: exact transcript, one reply per buffer, subprotocol echoed', async (t) => {
    const modelPath = t.testdir();
    await writeToneModel(modelPath);
    const server = await startTestServer({ STT_ENGINE: 'vosk', VOSK_MODEL_PATH: modelPath, MAX_WORKERS: '2', ALLOWED_ORIGINS: '*' });
    t.teardown(() => server.close());
    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    t.teardown(() => browser.close());
    const page = await browser.newPage();
    // A page of the server's own origin, as a deployed demo would be.
    await page.goto(`${server.httpUrl}/livez`);
    const pcm = tones(WORDS, { sampleRateHz: 8000 });

    for (const protocols of [[], ['ws']]) {
      const run = (await page.evaluate(
        async ({ url, audioBase64, protocols }) => {
          const bytes = Uint8Array.from(atob(audioBase64), (c) => c.charCodeAt(0));
          const samples = new Int16Array(bytes.buffer);
          const socket = new WebSocket(url, protocols);
          const replies: string[] = [];
          socket.onmessage = (event) => replies.push(String(event.data));
          await new Promise((resolve, reject) => {
            socket.onopen = resolve;
            socket.onerror = reject;
          });
          socket.send(JSON.stringify({ config: { sample_rate: 8000 } }));
          // The sample's worklet posts a full Int16Array(4096) each time it fills.
          for (let offset = 0; offset < samples.length; offset += 4096) socket.send(samples.slice(offset, offset + 4096));
          socket.send('{"eof" : 1}');
          const closeCode = await new Promise<number>((resolve) => {
            socket.onclose = (event) => resolve(event.code);
          });
          return { replies, closeCode, protocol: socket.protocol };
        },
        { url: server.wsUrl('/asr/en/'), audioBase64: pcm.toString('base64'), protocols },
      )) as PageRun;
      const buffers = Math.ceil(pcm.byteLength / 8192);
      t.equal(run.replies.length, buffers + 1, `${JSON.stringify(protocols)}: one reply per buffer and one for eof`);
      t.equal(transcriptOf(run.replies), WORDS.join(' '));
      t.equal(run.closeCode, 1000);
      t.equal(run.protocol, protocols[0] ?? '', 'the browser accepted the handshake with the echoed subprotocol');
    }
  });
}
