// The upgrade decisions of the /asr endpoint (the transport answers them; endpoint.test.ts drives them
// through a real server where the engine allows).
import t from 'tap';
import { AsrEndpoint } from '../../src/asr/endpoint.js';
import { Quotas } from '../../src/quotas/quotas.js';

const defaults = { sampleRate: 8000, words: true, maxAlternatives: 0, speakerModelAddress: null };
const quotas = new Quotas({ connections: 0, liveSessions: 0, recordings: 0, generationsPerMinute: 0 });
const neverCalled = (): never => {
  throw new Error('no stream is opened at the upgrade');
};

t.test('the model a path names', async (t) => {
  t.equal(AsrEndpoint.modelInPath('/asr'), null);
  t.equal(AsrEndpoint.modelInPath('/asr/'), null);
  t.equal(AsrEndpoint.modelInPath('/asr/en'), 'en');
  t.equal(AsrEndpoint.modelInPath('/asr/en/'), 'en');
  t.equal(AsrEndpoint.modelInPath('/asr/en-us/x'), 'en-us');
  t.equal(AsrEndpoint.modelInPath('/'), null);
});

t.test('refusals: no engine 503, unknown model 404, no capacity 503 with Retry-After', async (t) => {
  const noEngine = new AsrEndpoint({ defaults, modelNames: [], openStream: null, canAdmit: null, quotas });
  t.match(noEngine.refusal('/asr'), { status: '503 Service Unavailable', retryAfterSeconds: null });

  const named = new AsrEndpoint({ defaults, modelNames: ['en'], openStream: neverCalled, canAdmit: null, quotas });
  t.equal(named.refusal('/asr/en/'), null);
  t.equal(named.refusal('/asr'), null, 'no name in the path: the loaded model');
  t.match(named.refusal('/asr/fr'), { status: '404 Not Found' });
  t.equal(named.isKnownModel('en'), true);
  t.equal(named.isKnownModel('../model'), false);

  const anyName = new AsrEndpoint({ defaults, modelNames: [], openStream: neverCalled, canAdmit: null, quotas });
  t.equal(anyName.refusal('/asr/whatever/'), null, 'empty ASR_MODEL_NAMES: any name, as vosk-server');

  let hasRoom = false;
  const gated = new AsrEndpoint({ defaults, modelNames: [], openStream: neverCalled, canAdmit: () => hasRoom, quotas });
  t.match(gated.refusal('/asr'), { status: '503 Service Unavailable', retryAfterSeconds: 5 });
  hasRoom = true;
  t.equal(gated.refusal('/asr'), null);
});
