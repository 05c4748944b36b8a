// Issue 11 (and the dialogue parts of issue 12) as the phone app in use sees them. `PhoneApp` sends the
// frames the app sends (frontend_flutter/ai_sound_agent/lib/pages/main_processing.dart), with their exact
// fields and in its order, and reads events the way the app does: the speaker of a message_recorded is
// its `sender`, else the head of a queue of the app's own message_starts; every `error` is a toast;
// `llm_response` replaces the suggestions on screen. Extension events are ignored, as the app does.
// Audio is the app's 1 s chunks (32,000 bytes of PCM16); the mock recogniser's transcript states how many
// bytes it received, so "no lost audio" is an exact byte count.
import t, { type Test } from 'tap';
import { FakeOpenRouter, type FakeRequestRecord } from '../kit/fake-openrouter.js';
import { startTestServer, type TestServer } from '../kit/start-server.js';
import { TestClient, type ServerEventJson } from '../kit/ws-client.js';
import { ScriptedStt } from '../dialogue/scripted-stt.js';

const APP_PATH = '/conservation'; // the app's default base_url
const CHUNK_BYTES = 32_000; // the app's chunk: 1 s of 16 kHz PCM16
const USERNAME = '小林';
const OTHER = '王护士';

const transcriptOf = (bytes: number): string => `[mock transcript: ${(bytes / 32_000).toFixed(2)} s of audio, ${bytes} bytes]`;

interface ChatLine {
  name: string;
  content: string;
}

/** The app: what it sends, and what its screen shows. */
class PhoneApp {
  client: TestClient;
  readonly server: TestServer;
  sessionId = '';
  readonly roleQueue: string[] = [];
  readonly chat: ChatLine[] = [];
  /** Error codes, one per toast shown. */
  readonly toasts: string[] = [];
  suggestions: string[] = [];
  lastRestored: Record<string, unknown> | null = null;
  #readUpTo = 0;

  private constructor(server: TestServer, client: TestClient) {
    this.server = server;
    this.client = client;
  }

  /** Opens the dialogue page: connect, conversation_start as the app builds it, wait for session_created. */
  static async open(t: Test, server: TestServer, history: Array<{ message_id: string; name: string; content: string }> = []): Promise<PhoneApp> {
    const client = await TestClient.connect(server.wsUrl(APP_PATH));
    const app = new PhoneApp(server, client);
    t.teardown(() => app.client.close());
    client.send('conversation_start', {
      scenario_description: '在医院挂号处',
      response_count: 3,
      history_messages: history.map((m) => ({ message_id: m.message_id, sender: m.name, content: m.content })),
      target_profile: {
        name: OTHER, age: 0, gender: 'female', relations: ['assistant'], personalities: [], preferences: [], taboos: [], common_topics: [],
      },
    });
    app.sessionId = (await client.next('session_created')).data.session_id as string;
    return app;
  }

  // --- what the app sends ------------------------------------------------------------------------------

  startRecording(sender: string): void {
    this.roleQueue.push(sender);
    this.client.send('message_start', { session_id: this.sessionId, sender });
  }

  sendAudioChunk(bytes = CHUNK_BYTES): void {
    this.client.send('audio_stream', {
      session_id: this.sessionId,
      audio_chunk: Buffer.alloc(bytes).toString('base64'),
      duration: bytes / 32000.0,
      format: 'pcm16',
      sample_rate: 16000,
      channels: 1,
    });
  }

  stopRecording(): void {
    this.client.send('message_end', { session_id: this.sessionId });
  }

  manualGenerate(userOpinion: string): void {
    this.client.send('manual_generate', { session_id: this.sessionId, focused_message_ids: [], user_corpus: userOpinion });
  }

  selectResponse(content: string): void {
    this.client.send('user_selected_response', { session_id: this.sessionId, selected_content: content, sender: USERNAME });
  }

  userModification(modification: string): void {
    this.client.send('user_modification', { session_id: this.sessionId, modification });
  }

  /**
   * The app's reconnect: a new socket to the same URL. What the app queued while it connected (audio
   * chunks, timer events) goes out first; `afterConnect` sends it, then the app sends session_resume.
   */
  async reconnect(t: Test, beforeResume: (app: PhoneApp) => void): Promise<TestClient> {
    const old = this.client;
    this.useSocket(await this.newSocket(t));
    beforeResume(this);
    this.client.send('session_resume', { session_id: this.sessionId });
    return old;
  }

  async newSocket(t: Test): Promise<TestClient> {
    const client = await TestClient.connect(this.server.wsUrl(APP_PATH));
    t.teardown(() => client.close());
    return client;
  }

  /** From now on the app sends on (and reads) this socket. */
  useSocket(client: TestClient): void {
    this.client = client;
    this.#readUpTo = 0;
  }

  // --- what the app shows ----------------------------------------------------------------------------

  /** Waits until everything sent so far was handled (a probe the app does not send, harmless), then reads. */
  async settle(): Promise<void> {
    this.client.send('get_message_history', { session_id: this.sessionId });
    await this.client.next('message_history_response');
    this.#read();
  }

  /** Waits for an event of this type (reading everything before it the app's way). */
  async waitFor(type: string, predicate: (event: ServerEventJson) => boolean = () => true): Promise<ServerEventJson> {
    const event = await this.client.waitFor((e) => e.type === type && predicate(e), 10_000, type);
    this.#read();
    return event;
  }

  #read(): void {
    const events = this.client.received;
    for (; this.#readUpTo < events.length; this.#readUpTo++) this.#show(events[this.#readUpTo]!);
  }

  #show(event: ServerEventJson): void {
    const data = event.data;
    switch (event.type) {
      case 'message_recorded': {
        // `message_content as String` throws on null (a chosen reply; the app added it itself): nothing else happens.
        if (data.message_content === null) return;
        const sender = (data.sender as string | undefined) ?? this.roleQueue.shift() ?? '?';
        this.chat.push({ name: sender, content: data.message_content as string });
        return;
      }
      case 'llm_response':
        this.suggestions = data.suggestions as string[];
        return;
      case 'error':
        this.toasts.push(data.error_code as string);
        return;
      case 'session_restored':
        this.lastRestored = data;
        return;
      default:
        // status_update, opinion_prediction_response, session_created; extension events are ignored.
        return;
    }
  }
}

async function waitForLog(server: TestServer, predicate: (line: Record<string, unknown>) => boolean, from = 0): Promise<void> {
  // The log line is the event that proves the server did it; poll the captured lines for it.
  const deadline = Date.now() + 10_000;
  while (!server.logs.slice(from).some(predicate)) {
    if (Date.now() > deadline) throw new Error('the awaited log line never came');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function setup(t: Test, env: Record<string, string> = {}): Promise<{ server: TestServer; stt: ScriptedStt }> {
  const stt = new ScriptedStt();
  const server = await startTestServer(env, { stt });
  t.teardown(() => server.close());
  return { server, stt };
}

t.test('issue 11 #2 + #4: a refused message_start leaves every later speaker right and shows no toast per audio chunk', async (t) => {
  const { server, stt } = await setup(t);
  const app = await PhoneApp.open(t, server);
  stt.refuseNext = 1;
  app.startRecording(OTHER);
  for (let i = 0; i < 3; i++) app.sendAudioChunk(); // the app records anyway and sends a chunk every second
  app.stopRecording();
  await app.settle();
  t.same(app.toasts, ['STT_SERVICE_BUSY', 'NOT_RECORDING'], 'the refusal and the stop: no toast per audio chunk');
  t.equal(server.logs.filter((line) => line.msg === 'audio dropped: no recording').length, 3, 'the chunks were dropped and counted (debug log)');

  app.startRecording(USERNAME);
  app.sendAudioChunk();
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('message_recorded');
  app.startRecording(OTHER);
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('message_recorded');
  await app.settle();
  t.same(
    app.chat,
    [
      { name: USERNAME, content: transcriptOf(2 * CHUNK_BYTES) },
      { name: OTHER, content: transcriptOf(CHUNK_BYTES) },
    ],
    'each message shows who said it (the queue of message_starts is out of step by one)',
  );
  t.same(app.toasts, ['STT_SERVICE_BUSY', 'NOT_RECORDING'], 'no further toast');
});

t.test('issue 11 #3: message_start while a recording is open (its message_end died with the socket)', async (t) => {
  const { server } = await setup(t);
  const app = await PhoneApp.open(t, server);
  app.startRecording(OTHER);
  app.sendAudioChunk();
  app.sendAudioChunk();
  await app.waitFor('status_update', (e) => e.data.status === 'recording_message');
  const dead = await app.reconnect(t, () => undefined);
  dead.socket.terminate(); // the stop button's message_end went out on this socket and was lost
  await app.waitFor('session_restored');
  t.equal(app.lastRestored?.status, 'recording_message');

  app.startRecording(USERNAME);
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('message_recorded', (e) => e.data.sender === USERNAME);
  await app.settle();
  t.same(app.chat, [
    { name: OTHER, content: transcriptOf(2 * CHUNK_BYTES) },
    { name: USERNAME, content: transcriptOf(CHUNK_BYTES) },
  ], 'the open recording became its own message; later audio joined the new one');
  t.same(app.toasts, [], 'no error');
  const generating = app.client.received.filter((e) => e.type === 'status_update' && e.data.status === 'generating_response');
  t.equal(generating.length, 1, 'automatic suggestions only after the recording that message_end ended');
});

t.test('issue 11 #4: audio without a recording: one error per recording-less stretch, binary frames too', async (t) => {
  const { server } = await setup(t);
  const app = await PhoneApp.open(t, server);
  for (let i = 0; i < 5; i++) app.sendAudioChunk();
  await app.settle();
  t.same(app.toasts, ['NOT_RECORDING'], 'five chunks, one toast');
  app.startRecording(OTHER);
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('message_recorded');
  for (let i = 0; i < 3; i++) app.sendAudioChunk();
  for (let i = 0; i < 3; i++) app.client.sendRaw(Buffer.alloc(640), true);
  await app.settle();
  t.same(app.toasts, ['NOT_RECORDING', 'NOT_RECORDING'], 'a new stretch after the recording: one toast for its base64 and binary audio');

  // Binary frames from a connection that never recorded anything.
  const other = await TestClient.connect(server.wsUrl());
  t.teardown(() => other.close());
  for (let i = 0; i < 3; i++) other.sendRaw(Buffer.alloc(640), true);
  other.send('conversation_start', { response_count: 1 });
  await other.next('session_created');
  t.same(other.received.map((e) => e.type), ['error', 'session_created'], 'one error for three frames');
  t.equal(server.logs.filter((line) => line.msg === 'audio dropped: no recording').length, 14, 'every dropped frame counted');
  t.equal(server.logs.filter((line) => line.msg === 'event rejected').length, 3, 'one info line per error, not per frame');
});

t.test('issue 11 #4: audio naming a session the server no longer has: one error, not one per chunk', async (t) => {
  const { server } = await setup(t);
  const app = await PhoneApp.open(t, server);
  app.sessionId = '00000000-0000-4000-8000-000000000000'; // e.g. lost with a restart without persistence
  for (let i = 0; i < 5; i++) app.sendAudioChunk();
  for (let i = 0; i < 2; i++) app.stopRecording();
  // A round trip that does not name the lost session.
  app.client.send('conversation_start', { response_count: 1 });
  await app.waitFor('session_created', (e) => e.data.session_id !== app.sessionId);
  t.same(app.toasts, ['SESSION_NOT_FOUND', 'SESSION_NOT_FOUND', 'SESSION_NOT_FOUND'], 'one for the five chunks, one per control event');
  t.equal(server.logs.filter((line) => line.msg === 'audio dropped: no such session').length, 5);
});

/** The first socket records two chunks; returns it. */
async function recordOnFirstSocket(app: PhoneApp): Promise<TestClient> {
  app.startRecording(OTHER);
  app.sendAudioChunk();
  app.sendAudioChunk();
  await app.waitFor('status_update', (e) => e.data.status === 'recording_message');
  await app.settle();
  return app.client;
}

/** What the app's reconnect queue holds: two chunks and the 5 s user-opinion timer's manual_generate. */
const queuedWhileConnecting = (app: PhoneApp): void => {
  app.sendAudioChunk();
  app.sendAudioChunk();
  app.manualGenerate('我想问问挂号费');
};

/** After session_resume: one more chunk, then the stop button. Asserts the whole recording arrived. */
async function finishAfterResume(t: Test, app: PhoneApp): Promise<void> {
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('message_recorded');
  await app.settle();
  t.same(app.chat, [{ name: OTHER, content: transcriptOf(5 * CHUNK_BYTES) }], 'all five chunks are in the message: no audio lost');
  t.same(app.toasts, [], 'no error toast');
  t.match(app.lastRestored, { session_id: app.sessionId, status: 'recording_message' });
}

t.test('issue 11 #5: reconnect after the server saw the old socket close: queued audio first, no error, no loss', async (t) => {
  const { server } = await setup(t);
  const app = await PhoneApp.open(t, server);
  const first = await recordOnFirstSocket(app);
  const logsBefore = server.logs.length;
  await first.close();
  await waitForLog(server, (line) => line.msg === 'connection closed', logsBefore);
  await app.reconnect(t, queuedWhileConnecting);
  await finishAfterResume(t, app);
  t.ok(server.logs.some((line) => line.msg === 'session taken by the connection that named it first'));
});

t.test('issue 11 #5: reconnect while the old socket is half-open (not yet noticed dead): held until session_resume', async (t) => {
  const { server } = await setup(t);
  const app = await PhoneApp.open(t, server);
  const first = await recordOnFirstSocket(app);
  first.socket.pause(); // the old socket is gone for the phone; the server has not noticed
  await app.reconnect(t, queuedWhileConnecting);
  await finishAfterResume(t, app);
  t.ok(server.logs.some((line) => line.msg === 'events held: the session is attached to another connection; waiting for session_resume'));
});

t.test('issue 11 #5: half-open, then the old socket closes before the resume: the new connection takes the session', async (t) => {
  const { server } = await setup(t);
  const app = await PhoneApp.open(t, server);
  const first = await recordOnFirstSocket(app);
  const logsBefore = server.logs.length;
  const second = await app.newSocket(t);
  app.useSocket(second);
  queuedWhileConnecting(app);
  await waitForLog(server, (line) => typeof line.msg === 'string' && line.msg.startsWith('events held'), logsBefore);
  await first.close();
  await waitForLog(server, (line) => line.msg === 'session taken by the connection that named it first', logsBefore);
  second.send('session_resume', { session_id: app.sessionId });
  await app.waitFor('session_restored');
  await finishAfterResume(t, app);
});

t.test('held events are bounded: past 1 MiB one error, not one per frame; what was held still runs', async (t) => {
  const { server } = await setup(t);
  const app = await PhoneApp.open(t, server);
  await recordOnFirstSocket(app);
  app.useSocket(await app.newSocket(t));
  for (let i = 0; i < 40; i++) app.sendAudioChunk();
  app.client.send('session_resume', { session_id: app.sessionId });
  app.stopRecording();
  await app.waitFor('message_recorded');
  await app.settle();
  t.same(app.toasts, ['SESSION_NOT_FOUND'], 'one error for everything past the bound');
  t.same(app.chat, [{ name: OTHER, content: transcriptOf((2 + 32) * CHUNK_BYTES) }], 'the first 32 held chunks (1 MiB) were kept, in order');
});

t.test('issue 11 #10: session_restored.message_count counts the session messages, not the history', async (t) => {
  const { server } = await setup(t, { AUTO_SUGGEST: 'false' });
  const app = await PhoneApp.open(t, server, [
    { message_id: 'h1', name: OTHER, content: '您好' },
    { message_id: 'h2', name: USERNAME, content: '我想挂号' },
  ]);
  app.startRecording(OTHER);
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('message_recorded');
  app.selectResponse('内科，谢谢');
  await app.waitFor('opinion_prediction_response');
  await app.reconnect(t, () => undefined);
  await app.waitFor('session_restored');
  t.equal(app.lastRestored?.message_count, 2, 'one recording and one chosen reply');
});

t.test('issue 11 #11: no automatic suggestions after a recording with an empty transcript', async (t) => {
  const { server, stt } = await setup(t);
  const app = await PhoneApp.open(t, server);
  stt.silentNext = 1;
  app.startRecording(OTHER);
  app.sendAudioChunk();
  app.stopRecording();
  const recorded = await app.waitFor('message_recorded');
  t.equal(recorded.data.message_content, '');
  await app.settle();
  const after = app.client.received.slice(app.client.received.indexOf(recorded));
  t.notOk(after.some((e) => e.type === 'llm_response' || e.data.status === 'generating_response'), 'no generation started');
  app.startRecording(OTHER);
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('llm_response');
  t.pass('a recording with text still gets its automatic suggestions');
});

t.test('issue 12 #4: a refused message_start does not cancel the running generation', async (t) => {
  const { server, stt } = await setup(t, { MOCK_LLM_DELTA_DELAY_MS: '20' });
  const app = await PhoneApp.open(t, server);
  app.manualGenerate('');
  const generating = await app.waitFor('status_update', (e) => e.data.status === 'generating_response');
  stt.refuseNext = 1;
  app.startRecording(OTHER);
  await app.waitFor('error');
  const response = await app.waitFor('llm_response');
  t.equal(response.data.suggestions.length, 3, 'the generation still delivered');
  t.ok(app.client.received.indexOf(generating) < app.client.received.indexOf(response));
  t.same(app.toasts, ['STT_SERVICE_BUSY']);
});

t.test('issue 12 #5: audio queued behind a pending message_end is bounded, with one error', async (t) => {
  const { server, stt } = await setup(t, { AUTO_SUGGEST: 'false' });
  const app = await PhoneApp.open(t, server);
  app.startRecording(OTHER);
  app.sendAudioChunk();
  let release!: () => void;
  stt.finishGate = new Promise((resolve) => (release = resolve));
  app.stopRecording();
  await stt.gateReached();
  // The user taps record again at once: message_start and 40 s of audio wait behind message_end.
  app.startRecording(USERNAME);
  for (let i = 0; i < 40; i++) app.sendAudioChunk();
  await app.waitFor('error');
  stt.finishGate = null;
  release();
  app.stopRecording();
  await app.waitFor('message_recorded', (e) => e.data.sender === USERNAME);
  await app.settle();
  t.same(app.toasts, ['AUDIO_LIMIT_EXCEEDED'], 'one error, not one per frame');
  t.same(app.chat, [
    { name: OTHER, content: transcriptOf(CHUNK_BYTES) },
    { name: USERNAME, content: transcriptOf(32 * CHUNK_BYTES) },
  ], 'the first 1 MiB of queued audio was kept');
  t.equal(server.logs.filter((line) => line.msg === 'event rejected').length, 1, 'one log line above debug for the dropped frames');
});

// --- with the real LLM engine against the fake OpenRouter (the prompt shows what steered a generation) ---

async function setupLlm(t: Test): Promise<{ fake: FakeOpenRouter; server: TestServer }> {
  const fake = await FakeOpenRouter.start({ tokenIntervalMs: 1 });
  t.teardown(() => fake.close());
  const server = await startTestServer({ OPENROUTER_API_KEY: 'sk-e2e-key', OPENROUTER_BASE_URL: fake.baseUrl, OPENROUTER_MODEL: 'test/primary' });
  t.teardown(() => server.close());
  return { fake, server };
}

/** The user-intent section of a suggestions request's prompt. */
function intentOf(record: FakeRequestRecord | undefined): string {
  const prompt = (record?.body.messages ?? []).filter((m) => m.role === 'user').map((m) => m.content).join('\n');
  const start = prompt.indexOf('## 用户想表达的意思');
  const end = prompt.indexOf('\n## ', start + 1);
  return prompt.slice(start, end < 0 ? undefined : end);
}

const suggestionRequests = (fake: FakeOpenRouter): FakeRequestRecord[] => fake.requests.filter((r) => r.kind === 'suggestions');

t.test('issue 11 #7: user_corpus steers its generation; forgotten at the chosen reply and at message_start', async (t) => {
  const { fake, server } = await setupLlm(t);
  const app = await PhoneApp.open(t, server);
  app.manualGenerate(''); // 1 s after session_created
  await app.waitFor('llm_response');
  t.notMatch(intentOf(suggestionRequests(fake).at(-1)), '燕麦奶');
  app.manualGenerate('想问有没有燕麦奶'); // the compose box, sent by the 5 s timer
  await app.waitFor('llm_response');
  t.match(intentOf(suggestionRequests(fake).at(-1)), '想问有没有燕麦奶', 'the generation it came with follows it');
  app.userModification('更礼貌一些');
  await app.waitFor('llm_response');
  t.match(intentOf(suggestionRequests(fake).at(-1)), '想问有没有燕麦奶', 'a modification of that generation still does');

  app.selectResponse(app.suggestions[0]!);
  await app.waitFor('opinion_prediction_response');
  app.userModification('短一点');
  await app.waitFor('llm_response');
  t.notMatch(intentOf(suggestionRequests(fake).at(-1)), '燕麦奶', 'forgotten once a reply was chosen');

  app.manualGenerate('问问价格');
  await app.waitFor('llm_response');
  t.match(intentOf(suggestionRequests(fake).at(-1)), '问问价格');
  app.startRecording(OTHER);
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('message_recorded');
  const automatic = await app.waitFor('llm_response');
  const record = suggestionRequests(fake).find((r) => r.headers['x-request-id'] === automatic.data.request_id);
  t.ok(record, 'the automatic generation reached the LLM');
  t.notMatch(intentOf(record), '问问价格', 'automatic suggestions after a recording do not use an older user_corpus');
  app.userModification('更口语');
  await app.waitFor('llm_response');
  t.notMatch(intentOf(suggestionRequests(fake).at(-1)), '问问价格', 'forgotten at message_start');
  t.same(app.toasts, []);
});

t.test('issue 11 #8: an LLM failure sends the error only; the suggestions on screen stay', async (t) => {
  const { fake, server } = await setupLlm(t);
  const app = await PhoneApp.open(t, server);
  app.manualGenerate('');
  await app.waitFor('llm_response');
  const onScreen = app.suggestions;
  t.equal(onScreen.length, 3);
  fake.enqueue({ kind: 'status', status: 401, code: 401, message: 'No auth credentials found' });
  app.manualGenerate('想问有没有燕麦奶');
  const error = await app.waitFor('error');
  const requestId = /^request_id: ([0-9a-f-]{36})/.exec(error.data.details as string)?.[1];
  t.ok(requestId, 'the error names the request');
  t.equal(suggestionRequests(fake).at(-1)?.headers['x-request-id'], requestId, 'the one that failed');
  await app.settle();
  t.same(app.suggestions, onScreen, 'no empty llm_response erased the suggestions');
  t.same(app.toasts, ['LLM_SERVICE_ERROR']);
});

t.test('a parked recording that cannot be reopened (STT busy) at the reconnect: one toast, not one per audio chunk; recording goes on once it can', async (t) => {
  const { server, stt } = await setup(t, { ORPHANED_RECORDING_GRACE_MS: '1000', AUTO_SUGGEST: 'false' });
  const app = await PhoneApp.open(t, server);
  app.startRecording(OTHER);
  app.sendAudioChunk();
  await app.waitFor('status_update', (e) => e.data.status === 'recording_message');
  const logsBefore = server.logs.length;
  await app.client.close(); // the phone lost its network for longer than the grace period
  await waitForLog(server, (line) => typeof line.msg === 'string' && line.msg.startsWith('recording parked'), logsBefore);
  stt.refuseNext = 100; // every recogniser is taken meanwhile
  await app.reconnect(t, () => undefined);
  await app.waitFor('session_restored');
  for (let i = 0; i < 5; i++) app.sendAudioChunk(); // the app records on: a chunk every second
  await app.settle();
  t.same(app.toasts, ['STT_SERVICE_BUSY'], 'the resume told it once; the chunks are dropped quietly');
  stt.refuseNext = 0;
  app.sendAudioChunk();
  app.stopRecording();
  await app.waitFor('message_recorded');
  t.same(app.toasts, ['STT_SERVICE_BUSY']);
  t.same(app.chat, [{ name: OTHER, content: `${transcriptOf(CHUNK_BYTES)} ${transcriptOf(CHUNK_BYTES)}` }], 'the text before the park and after the reopen');
});
