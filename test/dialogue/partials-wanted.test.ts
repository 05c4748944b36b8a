// SessionManager.anyWants: the speech engine reads partial texts only while a connection attached to the
// session asked for transcript_partial (an extension event); connections come and go mid-recording.
import { pino } from 'pino';
import t from 'tap';
import type { ClientChannel } from '../../src/dialogue/channel.js';
import { RequestManager } from '../../src/dialogue/request-manager.js';
import { SessionManager } from '../../src/dialogue/session-manager.js';
import type { ServerEvent } from '../../src/protocol/server-events.js';
import { MemorySessionStore } from '../../src/store/memory-store.js';

const logger = pino({ level: 'silent' });

function channel(id: string, withheld: ReadonlySet<string> | null): ClientChannel {
  const base: ClientChannel = {
    id,
    log: logger,
    remoteAddress: '127.0.0.1',
    owner: null,
    grants: null,
    isClosed: false,
    send: () => true,
    sendAll: () => {},
    bufferedBytes: () => 0,
    needsDrain: false,
    drained: () => Promise.resolve(),
  };
  // null: a channel that does not implement wants() (counts as wanting everything).
  return withheld === null ? base : { ...base, wants: (type: ServerEvent['type']) => !withheld.has(type) };
}

t.test('transcript_partial is wanted while any attached connection asked for it', async (t) => {
  const sessions = new SessionManager({ store: new MemorySessionStore(), requests: new RequestManager(), logger, maxSessionsPerConnection: 8, maxAgeMs: 60_000, cleanupIntervalMs: 60_000 });
  t.teardown(() => sessions.close());
  const app = channel('app', new Set(['transcript_partial', 'llm_response_delta']));
  const session = sessions.create(app, { responseCount: 3, scenarioDescription: 'cafe', historyMessages: [], userProfile: null, targetProfile: null });
  t.equal(sessions.anyWants(session, 'transcript_partial'), false, 'the app (no extensions) only');
  t.equal(sessions.anyWants(session, 'message_recorded'), true, 'core events are always wanted');
  const viewer = channel('viewer', new Set());
  sessions.resume(session.id, viewer);
  t.equal(sessions.anyWants(session, 'transcript_partial'), true, 'a connection that opted in attached');
  sessions.detachChannel(viewer);
  t.equal(sessions.anyWants(session, 'transcript_partial'), false, 'and left again');
  sessions.resume(session.id, channel('legacy', null));
  t.equal(sessions.anyWants(session, 'transcript_partial'), true, 'a channel without wants() gets everything');
});
