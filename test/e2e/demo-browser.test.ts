// Issue 16: the /demo page in a real Chromium whose fake microphone plays tone words, against voxgate on
// loopback with real libvosk (a generated tone model, real workers) and the fake OpenRouter. Assertions are
// on what a person sees in the page. Screenshots land in .tap/demo-screenshots/ (path in the log).
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';
import { writeToneModel } from '../../src/vosk-model/tone-model.js';
import { PROJECT_ROOT } from '../../src/version.js';
import { FakeOpenRouter, type FakePrediction } from '../kit/fake-openrouter.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';

// Debian's package; CHROMIUM_PATH for another install.
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const INSTALL = 'apt-get update && apt-get install -y chromium';
const WORDS = ['alpha', 'charlie', 'bravo'];
const SUGGESTIONS = ['好的，中杯就行。', '我想要大杯，谢谢。', '请问有燕麦奶吗？'];
const PREDICTION: FakePrediction = { tendency: '探索', mood: '好奇', tone: '委婉' };
const SCREENSHOT_DIR = join(PROJECT_ROOT, '.tap', 'demo-screenshots');
// Generous for a loaded 2-core CI machine; every wait ends as soon as the page shows the thing.
const UI_TIMEOUT_MS = 30_000;

if (!existsSync(CHROMIUM)) {
  if (process.env.CI) {
    t.fail(`${CHROMIUM} is missing: the demo page cannot be tested in a browser. Install it with: ${INSTALL}`);
  } else {
    t.plan(0, `${CHROMIUM} is missing (install it with: ${INSTALL}); in CI this fails`);
  }
} else {
  t.setTimeout(240_000);
  t.test('speak tone words through the fake microphone: transcript, streamed replies, a chosen reply, resume after reload', async (t) => {
    const dir = t.testdir();
    const { server, fake } = await startServers(t, dir);
    // Lead silence covers the time from opening the microphone to the worklet running; the long tail lets
    // the test stop listening well before the file (played once: %noloop) ends.
    const wav = join(dir, 'tone-words.wav');
    await writeFile(wav, wavFile(synthesizeToneAudio(WORDS, { sampleRateHz: 48_000, leadMs: 2000, tailMs: 20_000 }), 48_000));
    const context = await launch(t, dir, ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}%noloop`]);
    const page = await context.newPage();
    const socketUrls: string[] = [];
    page.on('websocket', (socket) => socketUrls.push(socket.url()));
    await page.goto(`${server.httpUrl}/demo`);

    await expectText(page, '#connection', /Connected\. Start a conversation/);
    t.match(socketUrls[0], /\/conversation\?extensions=all$/, 'the page asks for the extension events');
    await expectText(page, '#health', /speech: vosk \(model\), 0 (of \d+ )?streams · replies: openrouter \(test\/demo-model\)/);

    await page.fill('#scenario', '在咖啡店点单');
    await page.fill('#other', '店员');
    await page.fill('#me', '小林');
    await page.selectOption('#count', '3');
    await page.click('#start');
    await expectText(page, '#connection', /Conversation started/);
    const sessionId = await page.evaluate(`localStorage.getItem('voxgate.demo.session')`);
    t.match(sessionId, /^[\w-]{8,}$/, 'the session id is kept in the page storage');
    await watchPage(page);

    // The space bar starts listening (focus on no control, as after a click on the page).
    await page.evaluate('document.activeElement?.blur()');
    await page.keyboard.press('Space');
    await expectText(page, '#activity', /Listening/);
    t.equal(await page.getAttribute('#talk', 'aria-pressed'), 'true', 'the button shows that the page is listening');
    await expectText(page, '#partial', /^alpha/);
    await expectText(page, '#partial', new RegExp(`^${WORDS.join(' ')}$`));
    const loudest = (await page.evaluate('window.loudest')) as number;
    t.ok(loudest > 0.5, `the level meter moved with the tones (up to ${loudest.toFixed(2)})`);
    await page.click('#talk');

    // The final message is the words exactly, under the other person's name.
    const recorded = page.locator('#history li.theirs').last();
    await recorded.waitFor({ timeout: UI_TIMEOUT_MS });
    t.equal(await recorded.locator('.content').textContent(), WORDS.join(' '), 'the recorded message is the spoken words');
    t.equal(await recorded.locator('.sender').textContent(), '店员');
    t.equal(await page.textContent('#partial'), '', 'the live transcript is cleared once the message is recorded');

    // The replies grow token by token, then end as the fake sent them.
    await page.locator(`#suggestions[aria-busy="false"] li:nth-child(${SUGGESTIONS.length}) .reply`).waitFor({ timeout: UI_TIMEOUT_MS });
    t.same(await page.locator('#suggestions .reply').allTextContents(), SUGGESTIONS, 'the final replies');
    const seen = (await page.evaluate('window.seenReplies')) as string[][];
    const growing = seen.filter((texts) => texts[0] !== undefined && texts[0] !== '' && texts[0] !== SUGGESTIONS[0]);
    t.ok(growing.length >= 2, `the first reply was shown growing (${growing.length} intermediate states)`);
    t.ok(growing.every((texts) => SUGGESTIONS[0]!.startsWith(texts[0]!)), 'every intermediate state is a prefix of the final reply');
    const suggestionRequest = fake.requests.find((r) => r.kind === 'suggestions');
    t.match(JSON.stringify(suggestionRequest?.body.messages), `店员: ${WORDS.join(' ')}`, 'the transcript reached the LLM prompt');

    // A tap records the reply and shows the prediction.
    await page.click(`#suggestions li:nth-child(3) .reply`);
    await expectText(page, '#prediction', new RegExp(`${PREDICTION.tendency} · ${PREDICTION.mood} · ${PREDICTION.tone}`));
    const mine = page.locator('#history li.mine').last();
    t.equal(await mine.locator('.content').textContent(), SUGGESTIONS[2]);
    t.equal(await mine.locator('.sender').textContent(), '小林');
    const predictionRequest = fake.requests.find((r) => r.kind === 'prediction');
    t.match(JSON.stringify(predictionRequest?.body.messages), SUGGESTIONS[2]!, 'user_selected_response reached the server');
    await screenshots(t, page, 'conversation');
    await page.setViewportSize({ width: 390, height: 844 });

    // A reload resumes the same session and shows its history.
    await page.reload();
    await expectText(page, '#connection', /Conversation resumed \(2 messages\)/);
    await page.locator('#history li:nth-child(2)').waitFor({ timeout: UI_TIMEOUT_MS });
    t.same(
      await page.evaluate(`[...document.querySelectorAll('#history li')].map((li) => [li.querySelector('.sender').textContent, li.querySelector('.content').textContent])`),
      [['店员', WORDS.join(' ')], ['小林', SUGGESTIONS[2]]],
      'the history after the reload',
    );
    t.equal(await page.evaluate(`localStorage.getItem('voxgate.demo.session')`), sessionId, 'the same session');
    t.equal(await page.isEnabled('#talk'), true, 'ready to listen again');
    await screenshots(t, page, 'resumed');

    // New conversation ends the old one and starts empty.
    t.equal(await page.isVisible('#start'), false, 'the settings fold away while a conversation runs');
    await page.click('#settings > summary');
    await page.click('#start');
    await expectText(page, '#connection', /Conversation started/);
    const newSessionId = await page.evaluate(`localStorage.getItem('voxgate.demo.session')`);
    t.not(newSessionId, sessionId, 'a new session');
    t.equal(await page.locator('#history li').count(), 0, 'with an empty history');
    const health = (await (await fetch(`${server.httpUrl}/api/health`)).json()) as { services: { session_manager: { active_sessions: number } } };
    t.equal(health.services.session_manager.active_sessions, 1, 'the old conversation was ended');

  });

  t.test('microphone refused: the page says so and starts no recording', async (t) => {
    const dir = t.testdir();
    const { server } = await startServers(t, dir);
    const context = await launch(t, dir, ['--use-fake-device-for-media-stream', '--deny-permission-prompts']);
    const page = await context.newPage();
    await page.goto(`${server.httpUrl}/demo`);
    await expectText(page, '#connection', /Connected\. Start a conversation/);
    await page.click('#start');
    await expectText(page, '#connection', /Conversation started/);
    await page.click('#talk');
    await expectText(page, '#mic', /Microphone access was refused/);
    t.equal(await page.getAttribute('#talk', 'aria-pressed'), 'false', 'not listening');
    t.equal(await page.isEnabled('#talk'), true, 'the button can be pressed again');
    t.equal(server.voxgate.stt.health().activeStreams, 0, 'no recording was started');
    await screenshots(t, page, 'microphone-refused');
  });

  t.test('no microphone at all: the page says so', async (t) => {
    const dir = t.testdir();
    const { server } = await startServers(t, dir);
    // Permission granted, but this machine has no capture device and no fake one.
    const context = await launch(t, dir, ['--use-fake-ui-for-media-stream']);
    const page = await context.newPage();
    await page.goto(`${server.httpUrl}/demo`);
    await expectText(page, '#connection', /Connected\. Start a conversation/);
    // The token field (for servers with credentials) reconnects with access_token on the URL.
    await page.click('#token-toggle');
    await page.fill('#token', 'demo-token');
    const [socket] = await Promise.all([page.waitForEvent('websocket'), page.press('#token', 'Tab')]);
    t.match(socket.url(), /\/conversation\?extensions=all&access_token=demo-token$/, 'reconnected with the token');
    await page.click('#start');
    await expectText(page, '#connection', /Conversation started/);
    await page.click('#talk');
    await expectText(page, '#mic', /No microphone was found|could not be opened/);
    t.equal(await page.getAttribute('#talk', 'aria-pressed'), 'false', 'not listening');
  });
}

/** The fake OpenRouter (slow enough tokens that the page shows replies growing) and voxgate with the tone model. */
async function startServers(t: Test, dir: string): Promise<{ server: TestServer; fake: FakeOpenRouter }> {
  const fake = await FakeOpenRouter.start({
    respond: (record) =>
      record.kind === 'suggestions'
        ? { kind: 'stream', suggestions: SUGGESTIONS, tokenChars: 1, tokenIntervalMs: 30 }
        : { kind: 'stream', prediction: PREDICTION },
  });
  t.teardown(() => fake.close());
  const modelDir = join(dir, 'model');
  await writeToneModel(modelDir);
  const server = await startTestServer({
    STT_ENGINE: 'vosk',
    VOSK_MODEL_PATH: modelDir,
    MAX_WORKERS: '1',
    OPENROUTER_API_KEY: 'sk-demo-test',
    OPENROUTER_BASE_URL: fake.baseUrl,
    OPENROUTER_MODEL: 'test/demo-model',
    AUTO_SUGGEST: 'true',
    LOG_LEVEL: 'info',
  });
  t.teardown(() => server.close());
  return { server, fake };
}

async function launch(t: Test, dir: string, mediaArgs: string[]): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 390, height: 844 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...mediaArgs,
    ],
  });
  t.teardown(() => context.close());
  return context;
}

/**
 * Waits until the element's text matches. (Locators, not waitForFunction with a string: that polls with
 * eval, which the page's Content-Security-Policy rightly refuses.)
 */
async function expectText(page: Page, selector: string, pattern: RegExp): Promise<void> {
  try {
    await page.locator(selector, { hasText: pattern }).waitFor({ timeout: UI_TIMEOUT_MS });
  } catch (err) {
    const actual = await page.textContent(selector).catch(() => null);
    throw new Error(`${selector} never matched ${pattern}; it shows ${JSON.stringify(actual)}; page errors: ${await page.textContent('#error')}`, { cause: err });
  }
}

/**
 * Records the reply texts after every change of the list, as a person watching would see them, and the
 * loudest level the meter showed (read every 10 ms: a meter shows, it does not notify).
 */
async function watchPage(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    window.seenReplies = [];
    window.loudest = 0;
    const meter = document.querySelector('#level');
    setInterval(() => { window.loudest = Math.max(window.loudest, meter.value); }, 10);
    const list = document.querySelector('#suggestions');
    new MutationObserver(() => {
      window.seenReplies.push([...list.querySelectorAll('.reply')].map((b) => b.textContent));
    }).observe(list, { subtree: true, childList: true, characterData: true });
  })()`);
}

async function screenshots(t: Test, page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  for (const [label, viewport] of [['phone', { width: 390, height: 844 }], ['desktop', { width: 1280, height: 900 }]] as const) {
    await page.setViewportSize(viewport);
    const path = join(SCREENSHOT_DIR, `${name}-${label}.png`);
    await page.screenshot({ path, fullPage: true });
    t.comment(`screenshot: ${path}`);
  }
}

/** A 16-bit mono PCM WAV file around `pcm`. */
function wavFile(pcm: Buffer, sampleRateHz: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRateHz, 24);
  header.writeUInt32LE(sampleRateHz * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}
