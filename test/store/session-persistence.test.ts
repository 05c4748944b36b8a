import { pino } from 'pino';
import t, { type Test } from 'tap';
import { RecordingService } from '../../src/dialogue/recordings.js';
import { RequestManager } from '../../src/dialogue/request-manager.js';
import { SessionManager } from '../../src/dialogue/session-manager.js';
import type { ClientChannel } from '../../src/dialogue/channel.js';
import type { ServerEvent } from '../../src/protocol/server-events.js';
import type { SttEngine, SttHealth, SttStream, SttStreamOptions } from '../../src/stt/engine.js';
import { capturedLogger, openStore, rawConnection } from './store-fixtures.js';

// The dialogue layer on the SQLite store, without the network: recognised segments are stored as they
// arrive and a second store on the same file (what a restarted process opens) continues the recording;
// the clean-up sweep and conversation_end delete from the file and say so in the log.

/** A scripted recogniser (the process edge): the test says when a segment is recognised. */
class ScriptedStt implements SttEngine {
  readonly name = 'mock' as const;
  readonly sampleRate = 16000;
  readonly streams: Array<{ options: SttStreamOptions; written: number; tail: string }> = [];

  openStream(options: SttStreamOptions): SttStream {
    const entry = { options, written: 0, tail: '' };
    this.streams.push(entry);
    return {
      write: (pcm) => {
        entry.written += pcm.byteLength;
      },
      finish: async () => entry.tail,
      abort: () => {},
      get receivedBytes() {
        return entry.written;
      },
    };
  }

  health(): SttHealth {
    return { engine: 'mock', status: 'healthy', reason: null, modelPath: null, workers: 0, activeStreams: 0, queueDepth: 0, streamLimit: null };
  }

  async close(): Promise<void> {}
}

class RecordingChannel implements ClientChannel {
  readonly id: string;
  readonly log = pino({ level: 'silent' });
  readonly remoteAddress = '127.0.0.1';
  readonly owner = null;
  readonly grants = null;
  readonly isClosed = false;
  readonly needsDrain = false;
  readonly events: ServerEvent[] = [];
  constructor(id: string) {
    this.id = id;
  }
  send(event: ServerEvent): boolean {
    this.events.push(event);
    return true;
  }
  sendAll(events: readonly ServerEvent[]): void {
    for (const event of events) this.send(event);
  }
  bufferedBytes(): number {
    return 0;
  }
  async drained(): Promise<void> {}
}

const MAX_AGE_MS = 60_000;

/** One "process": a store on `dir`, a session manager and a recording service on it. */
function processOn(t: Test, dir: string, busyTimeoutMs?: number) {
  const { logger, lines } = capturedLogger();
  const store = openStore(t, { dir, logger, ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }) });
  const sessions = new SessionManager({ store, requests: new RequestManager(), logger, maxSessionsPerConnection: 8, maxAgeMs: MAX_AGE_MS, cleanupIntervalMs: 60_000 });
  t.teardown(() => sessions.close());
  const stt = new ScriptedStt();
  const recordings = new RecordingService({ stt, sessions, logger, maxAudioBytesPerRecording: 1024 * 1024 });
  return { store, sessions, stt, recordings, lines };
}

const input = { responseCount: 3, scenarioDescription: 'cafe', historyMessages: [], userProfile: { name: 'U' }, targetProfile: null };

t.test('segments are stored as they are recognised; after a crash the recording continues with them', async (t) => {
  const dir = t.testdir();
  const first = processOn(t, dir);
  const session = first.sessions.create(new RecordingChannel('c1'), input);
  first.recordings.start(session, 'other');
  const stream = first.stt.streams[0]!.options;
  stream.onSegment('alpha');
  stream.onSegment('bravo');
  stream.onPartial('charl'); // not an endpoint yet: never stored, lost in a crash

  // The first process is never closed (as after SIGKILL); a second one opens the same file.
  const second = processOn(t, dir);
  const channel = new RecordingChannel('c2');
  const resumed = second.sessions.resume(session.id, channel);
  t.equal(resumed.status, 'recording_message');
  t.match(resumed.storedRecording, { messageId: 'msg_001', sender: 'other', segments: ['alpha', 'bravo'] });
  const live = second.recordings.reopen(resumed)!;
  t.same(live.segments, ['alpha', 'bravo'], 'the new stream starts from the stored segments');
  second.stt.streams[0]!.options.onSegment('charlie');
  t.same(second.store.load(session.id)!.recording!.segments, ['alpha', 'bravo', 'charlie']);
  const finished = await second.recordings.finish(resumed);
  t.same({ messageId: finished.messageId, text: finished.text }, { messageId: 'msg_001', text: 'alpha bravo charlie' });
});

t.test('a segment the store cannot write: the client gets STORAGE_ERROR, the text stays in the live recording', async (t) => {
  const proc = processOn(t, t.testdir(), 20);
  const channel = new RecordingChannel('c1');
  const session = proc.sessions.create(channel, input);
  proc.recordings.start(session, 'other');
  const blocker = rawConnection(t, proc.store.path);
  blocker.exec('BEGIN IMMEDIATE'); // another writer holds the lock longer than busy_timeout
  proc.stt.streams[0]!.options.onSegment('alpha');
  blocker.exec('ROLLBACK');
  t.match(channel.events, [{ type: 'error', data: { error_code: 'STORAGE_ERROR', details: 'sqlite: SQLITE_BUSY' } }, { type: 'transcript_partial', data: { text: 'alpha' } }]);
  t.same(proc.store.load(session.id)!.recording!.segments, [], 'not in the file');
  proc.stt.streams[0]!.options.onSegment('bravo');
  t.same(proc.store.load(session.id)!.recording!.segments, ['bravo'], 'later segments are stored again');
  const finished = await proc.recordings.finish(session);
  t.equal(finished.text, 'alpha bravo', 'this process still delivers the whole text');
});

t.test('the sweep deletes sessions untouched for maxAge from the file, including ones only the file knew, and logs each', async (t) => {
  const dir = t.testdir();
  const earlier = processOn(t, dir);
  const orphan = earlier.sessions.create(new RecordingChannel('c0'), input); // a session of a previous process

  const proc = processOn(t, dir);
  const channel = new RecordingChannel('c1');
  const idle = proc.sessions.create(channel, input);
  proc.sessions.detachChannel(channel);
  t.equal(proc.sessions.sweepExpired(Date.now()), 0, 'nothing is old yet');
  t.not(proc.store.load(idle.id), null);

  const later = Date.now() + MAX_AGE_MS + 1_000;
  t.equal(proc.sessions.sweepExpired(later), 2);
  t.equal(proc.store.load(idle.id), null);
  t.equal(proc.store.load(orphan.id), null);
  t.equal(proc.store.health().sessions, 0);
  const deleted = proc.lines.filter((line) => line.msg === 'session deleted' && line.reason === 'expired').map((line) => line.sessionId);
  t.same(deleted.sort(), [idle.id, orphan.id].sort(), 'one log line per expired session');
  t.throws(() => proc.sessions.resume(idle.id, new RecordingChannel('c2')), { code: 'SESSION_NOT_FOUND' });
});

t.test('ending a conversation deletes the session from the file and logs it', async (t) => {
  const dir = t.testdir();
  const proc = processOn(t, dir);
  const channel = new RecordingChannel('c1');
  const session = proc.sessions.create(channel, input);
  proc.sessions.end(session, 'conversation_end');
  t.equal(proc.store.load(session.id), null);
  t.ok(proc.lines.some((line) => line.msg === 'session deleted' && line.reason === 'conversation_end' && line.sessionId === session.id));
  const next = processOn(t, dir);
  t.throws(() => next.sessions.resume(session.id, new RecordingChannel('c2')), { code: 'SESSION_NOT_FOUND' }, 'gone after a restart too');
});
