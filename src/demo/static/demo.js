// The voxgate demo page (docs/demo.md): one WebSocket to /conversation, the microphone through an
// AudioWorklet (worklet.js) as 16 kHz PCM16 binary frames, and the events of docs/protocol.md shown as
// they come. Plain JavaScript, no build step.

const $ = (id) => document.getElementById(id);
const SESSION_KEY = 'voxgate.demo.session';
const TOKEN_KEY = 'voxgate.demo.token';
const FRAME_MS = 40;
// Frames captured before the server confirmed the recording: at most 10 s, then the oldest are dropped.
const MAX_PENDING_FRAMES = 10_000 / FRAME_MS;
const STATUS_TEXT = {
  idle: 'Ready.',
  recording_message: 'Listening…',
  processing_stt: 'Finishing the transcript…',
  generating_response: 'Writing replies…',
};

const state = {
  socket: null,
  retryMs: 500,
  retryTimer: undefined,
  sessionId: localStorage.getItem(SESSION_KEY),
  resuming: false,
  /** null | 'opening' (the microphone) | 'capturing' | 'draining' (stopped; the worklet's last frame) */
  capture: null,
  /** The server answered our message_start with recording_message: frames go out as they come. */
  confirmed: false,
  /** The worklet sent its last frame after a stop. */
  flushed: false,
  /** Frames captured before the recording was confirmed. */
  pendingFrames: [],
  audio: null,
  /** The worklet module's addModule() promise, once started. */
  workletLoaded: null,
  mic: null,
  requestId: null,
  drafts: [],
  /** Texts of chosen replies, oldest first, until their message_recorded arrives. */
  chosen: [],
  recordingSender: null,
};

// --- connection --------------------------------------------------------------------------------------

function socketUrl() {
  const url = new URL('/conversation', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // Ask for the extension events (live transcript, streamed replies).
  url.searchParams.set('extensions', 'all');
  const token = $('token').value.trim();
  if (token) url.searchParams.set('access_token', token);
  return url.href;
}

function connect() {
  clearTimeout(state.retryTimer);
  setConnection('Connecting…');
  const socket = new WebSocket(socketUrl());
  socket.binaryType = 'arraybuffer';
  state.socket = socket;
  updateControls();
  socket.onopen = () => {
    state.retryMs = 500;
    if (state.sessionId) {
      state.resuming = true;
      setConnection('Connected. Resuming the conversation…');
      send('session_resume', { session_id: state.sessionId });
    } else {
      setConnection('Connected. Start a conversation.');
    }
    updateControls();
  };
  socket.onmessage = (message) => {
    if (typeof message.data !== 'string') return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    handle(event);
  };
  socket.onclose = (close) => {
    if (state.socket !== socket) return;
    state.socket = null;
    stopCapture();
    const seconds = Math.round(state.retryMs / 100) / 10;
    setConnection(`Disconnected (${close.code}${close.reason ? `: ${close.reason}` : ''}). Reconnecting in ${seconds} s…`);
    state.retryTimer = setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 10_000);
    updateControls();
  };
}

function reconnect() {
  const old = state.socket;
  state.socket = null;
  old?.close();
  connect();
}

const isOpen = () => state.socket?.readyState === WebSocket.OPEN;

function send(type, data) {
  if (!isOpen()) return false;
  state.socket.send(JSON.stringify({ type, data }));
  return true;
}

// --- server events -----------------------------------------------------------------------------------

function handle({ type, data = {} }) {
  // Events of an older conversation (ended by New conversation) are not shown.
  if (type !== 'session_created' && data.session_id && state.sessionId && data.session_id !== state.sessionId) return;
  switch (type) {
    case 'session_created':
      rememberSession(data.session_id);
      $('history').replaceChildren();
      clearReplies();
      setConnection('Connected. Conversation started.');
      $('settings').open = false;
      break;
    case 'session_restored':
      state.resuming = false;
      $('count').value = String(data.response_count);
      if (data.scenario_description !== null) $('scenario').value = data.scenario_description;
      setConnection(`Connected. Conversation resumed (${data.message_count} messages).`);
      $('settings').open = false;
      send('get_message_history', { session_id: state.sessionId });
      // A recording cut off by the reload: finish it, so its words are kept.
      if (data.status === 'recording_message' && state.capture === null) send('message_end', { session_id: state.sessionId });
      break;
    case 'message_history_response':
      $('history').replaceChildren(...data.messages.map((m) => historyItem(m.sender, m.content, m.message_type)));
      break;
    case 'status_update':
      setActivity(STATUS_TEXT[data.status] ?? data.status);
      if (data.status === 'recording_message') recordingConfirmed();
      if (data.status === 'generating_response') clearReplies(true);
      break;
    case 'transcript_partial':
      $('partial').textContent = data.text;
      break;
    case 'message_recorded':
      recorded(data);
      break;
    case 'llm_response_delta':
      if (data.request_id !== state.requestId) clearReplies(true, data.request_id);
      state.drafts[data.index] = (state.drafts[data.index] ?? '') + data.delta;
      renderReplies();
      break;
    case 'llm_response':
      state.requestId = data.request_id;
      state.drafts = [...data.suggestions];
      renderReplies();
      $('suggestions').setAttribute('aria-busy', 'false');
      if (data.suggestions.length === 0) setActivity('No replies this time.');
      else setActivity('Tap a reply to say it.');
      break;
    case 'opinion_prediction_response': {
      const { tendency, mood, tone } = data.prediction;
      $('prediction').textContent = `Their likely reaction: ${tendency} · ${mood} · ${tone}`;
      break;
    }
    case 'profile_archive':
      break;
    case 'error':
      serverError(data);
      break;
  }
  updateControls();
}

function recorded(data) {
  if (data.message_content !== null) {
    const sender = data.sender ?? state.recordingSender ?? $('other').value;
    $('history').append(historyItem(sender, data.message_content, 'recording'));
    $('partial').textContent = '';
  } else if (state.chosen.length > 0) {
    $('history').append(historyItem(data.sender ?? $('me').value, state.chosen.shift(), 'selected_response'));
  } else {
    // Chosen elsewhere (another tab on the same conversation): the history has its text.
    send('get_message_history', { session_id: state.sessionId });
  }
}

function serverError(data) {
  const text = [data.error_code, data.message, data.details].filter(Boolean).join(' — ');
  $('error').textContent = text;
  if (data.error_code === 'SESSION_NOT_FOUND' && state.resuming) {
    state.resuming = false;
    forgetSession();
    $('error').textContent = `The previous conversation is no longer on the server (${text}). Start a new one.`;
  }
  // The recording is full: end it, so that what was heard is kept.
  if (data.error_code === 'AUDIO_LIMIT_EXCEEDED' && state.capture === 'capturing') stopSpeaking();
  // The recording did not start: give the microphone back.
  if (state.capture !== null && !state.confirmed && ['STT_SERVICE_BUSY', 'STT_SERVICE_ERROR', 'RECORDING_IN_PROGRESS', 'SESSION_NOT_FOUND'].includes(data.error_code)) {
    stopCapture();
  }
}

function rememberSession(id) {
  state.sessionId = id;
  localStorage.setItem(SESSION_KEY, id);
}

function forgetSession() {
  state.sessionId = null;
  localStorage.removeItem(SESSION_KEY);
}

// --- page ---------------------------------------------------------------------------------------------

function setConnection(text) {
  $('connection').textContent = text;
}

function setActivity(text) {
  $('activity').textContent = text;
}

function historyItem(sender, content, kind) {
  const item = document.createElement('li');
  item.className = kind === 'selected_response' ? 'mine' : 'theirs';
  const who = document.createElement('span');
  who.className = 'sender';
  who.textContent = sender;
  const text = document.createElement('span');
  text.className = 'content';
  text.textContent = content ?? '';
  item.append(who, text);
  return item;
}

function clearReplies(busy = false, requestId = null) {
  state.requestId = requestId;
  state.drafts = [];
  $('suggestions').replaceChildren();
  $('suggestions').setAttribute('aria-busy', String(busy));
  $('prediction').textContent = '';
}

function renderReplies() {
  const list = $('suggestions');
  // A plain loop: deltas of a later reply may come first, leaving holes that forEach would skip.
  for (let index = 0; index < state.drafts.length; index++) {
    const text = state.drafts[index];
    let button = list.children[index]?.firstElementChild;
    if (!button) {
      const item = document.createElement('li');
      button = document.createElement('button');
      button.type = 'button';
      button.className = 'reply';
      button.addEventListener('click', () => choose(button));
      item.append(button);
      list.append(item);
    }
    if (button.textContent !== (text ?? '')) button.textContent = text ?? '';
  }
  while (list.children.length > state.drafts.length) list.lastElementChild.remove();
}

function choose(button) {
  const text = button.textContent;
  if (!text || !state.sessionId) return;
  if (!send('user_selected_response', { session_id: state.sessionId, selected_content: text, sender: $('me').value.trim() || '我' })) return;
  state.chosen.push(text);
  button.setAttribute('aria-pressed', 'true');
  $('prediction').textContent = '';
  speak(text);
}

function speak(text) {
  if (!('speechSynthesis' in window)) return;
  const utterance = new SpeechSynthesisUtterance(text);
  // Chinese text with an English page voice would be read letter by letter.
  if (/[\u3400-\u9fff]/.test(text)) utterance.lang = 'zh-CN';
  speechSynthesis.cancel();
  speechSynthesis.speak(utterance);
}

function updateControls() {
  const ready = isOpen() && state.sessionId !== null && !state.resuming;
  const talk = $('talk');
  talk.disabled = state.capture === 'draining' || (!ready && state.capture === null);
  talk.setAttribute('aria-pressed', String(state.capture !== null));
  talk.textContent = state.capture === null ? 'Start listening' : 'Stop listening';
  $('generate').disabled = !ready || state.capture !== null;
  $('start').disabled = !isOpen() || state.capture !== null;
}

// --- microphone ---------------------------------------------------------------------------------------

function micProblem(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone access was refused. Allow the microphone for this page in the browser (the icon in the address bar), then press Start listening again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found. Connect one and press Start listening again.';
    case 'NotReadableError':
      return 'The microphone could not be opened: another application may be using it.';
    case 'NoMediaDevices':
      return 'This browser cannot use a microphone here: open the page over https or on localhost.';
    default:
      return `The microphone could not be started (${err?.name ?? 'error'}: ${err?.message ?? err}).`;
  }
}

async function startCapture() {
  if (state.capture !== null || !state.sessionId || !isOpen()) return;
  $('mic').textContent = '';
  $('error').textContent = '';
  Object.assign(state, { capture: 'opening', confirmed: false, flushed: false, pendingFrames: [] });
  updateControls();
  // Created in the click/key handler: browsers let audio start only from a user gesture.
  state.audio ??= new AudioContext();
  const resumed = state.audio.resume();
  // Loaded while the microphone opens: the first words are spoken as soon as it is on.
  if (!state.workletLoaded) {
    state.workletLoaded = state.audio.audioWorklet.addModule('/demo/worklet.js');
    // A failed load is tried again at the next start.
    state.workletLoaded.catch(() => {
      state.workletLoaded = null;
    });
  }
  let stream;
  try {
    if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error('no mediaDevices'), { name: 'NoMediaDevices' });
    // No noise suppression or gain control: they change what the recogniser hears.
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
    });
    await resumed;
    await state.workletLoaded;
  } catch (err) {
    stream?.getTracks().forEach((track) => track.stop());
    if (state.capture === 'opening') state.capture = null;
    $('mic').textContent = micProblem(err);
    updateControls();
    return;
  }
  if (state.capture !== 'opening') {
    // Stopped (or disconnected) while the microphone was opening.
    stream.getTracks().forEach((track) => track.stop());
    return;
  }
  const source = state.audio.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(state.audio, 'pcm16-capture', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    channelCount: 1,
    channelCountMode: 'explicit',
    channelInterpretation: 'speakers',
    processorOptions: { frameMs: FRAME_MS },
  });
  node.port.onmessage = (message) => fromWorklet(message.data);
  source.connect(node);
  // Connected to the output (it writes silence) so that every browser keeps pulling it.
  node.connect(state.audio.destination);
  state.mic = { stream, source, node };
  state.capture = 'capturing';
  state.recordingSender = $('other').value.trim() || '对方';
  send('message_start', { session_id: state.sessionId, sender: state.recordingSender });
  updateControls();
}

/** The server confirmed our message_start: send what was captured meanwhile; frames flow from now on. */
function recordingConfirmed() {
  if (state.capture !== 'capturing' && state.capture !== 'draining') return;
  if (state.confirmed) return;
  state.confirmed = true;
  for (const pcm of state.pendingFrames.splice(0)) state.socket.send(pcm);
  if (state.flushed) finishRecording();
}

function fromWorklet(message) {
  if (message.type === 'audio') {
    if (state.capture === 'capturing') $('level').value = message.level;
    if (state.confirmed) {
      if (isOpen()) state.socket.send(message.pcm);
    } else {
      state.pendingFrames.push(message.pcm);
      if (state.pendingFrames.length > MAX_PENDING_FRAMES) state.pendingFrames.shift();
    }
  } else if (message.type === 'flushed') {
    state.flushed = true;
    if (state.confirmed) finishRecording();
  }
}

function stopSpeaking() {
  if (state.capture === 'opening') {
    state.capture = null;
  } else if (state.capture === 'capturing') {
    state.capture = 'draining';
    state.mic.source.disconnect();
    state.mic.stream.getTracks().forEach((track) => track.stop());
    $('level').value = 0;
    // The worklet sends its last partial frame, then 'flushed' (the port keeps the order).
    state.mic.node.port.postMessage('flush');
  }
  updateControls();
}

/** Every frame of the recording is sent: now the server may finish the transcript. */
function finishRecording() {
  send('message_end', { session_id: state.sessionId });
  stopCapture();
}

function releaseMic() {
  const mic = state.mic;
  state.mic = null;
  $('level').value = 0;
  if (!mic) return;
  mic.stream.getTracks().forEach((track) => track.stop());
  mic.source.disconnect();
  mic.node.port.postMessage('close');
  mic.node.disconnect();
}

/** Ends capture without a message_end (done, refused, or disconnected: resuming finishes a recording). */
function stopCapture() {
  releaseMic();
  Object.assign(state, { capture: null, confirmed: false, flushed: false, pendingFrames: [] });
  updateControls();
}

function toggleTalk() {
  if (state.capture === null) startCapture();
  else stopSpeaking();
}

// --- health -------------------------------------------------------------------------------------------

async function refreshHealth() {
  try {
    const response = await fetch('/api/health', { cache: 'no-store' });
    const health = await response.json();
    const { stt, llm } = health.services;
    const model = stt.model_path ? stt.model_path.split('/').filter(Boolean).pop() : 'no model';
    // stream_limit: the most streams admitted (capacity, or the learned latency limit); null with the mock engine.
    const streams = stt.stream_limit === null ? `${stt.active_streams} streams` : `${stt.active_streams} of ${stt.stream_limit} streams`;
    $('health').textContent =
      `Server ${health.status} · speech: ${stt.engine} (${model}), ${streams} · replies: ${llm.engine} (${llm.model ?? 'no model'})`;
  } catch (err) {
    $('health').textContent = `Server health unknown (${err.message}).`;
  }
}

// --- wiring -------------------------------------------------------------------------------------------

$('setup').addEventListener('submit', (event) => {
  event.preventDefault();
  const other = $('other').value.trim();
  const data = { response_count: Number($('count').value), scenario_description: $('scenario').value.trim() || null };
  if (other) data.target_profile = { name: other };
  const me = $('me').value.trim();
  if (me) data.user_profile = { name: me };
  $('error').textContent = '';
  if (!isOpen()) return;
  // One conversation at a time: the previous one is ended (deleted on the server).
  if (state.sessionId) send('conversation_end', { session_id: state.sessionId });
  forgetSession();
  state.resuming = false;
  send('conversation_start', data);
});
$('count').addEventListener('change', () => {
  if (state.sessionId) send('response_count_update', { session_id: state.sessionId, response_count: Number($('count').value) });
});
$('talk').addEventListener('click', toggleTalk);
$('generate').addEventListener('click', () => send('manual_generate', { session_id: state.sessionId }));
$('token').value = sessionStorage.getItem(TOKEN_KEY) ?? '';
$('token').addEventListener('change', () => {
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  reconnect();
});
document.addEventListener('keydown', (event) => {
  // Space toggles listening, except where it types or presses the focused control.
  if (event.code !== 'Space' || event.repeat || event.target.closest('input, textarea, select, button, summary, a')) return;
  event.preventDefault();
  if (!$('talk').disabled) toggleTalk();
});

connect();
refreshHealth();
setInterval(() => {
  if (document.visibilityState === 'visible') refreshHealth();
}, 5000);
