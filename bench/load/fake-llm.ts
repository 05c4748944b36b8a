// Child process: the test kit's fake OpenRouter, in its own process so that the coordinator's and the
// server's event loops do not carry it. Prints `FAKE_LLM_URL <url>`; forgets finished request records so
// memory stays flat over a long run.
import { parseArgs } from 'node:util';

import { FakeOpenRouter } from '../../test/kit/fake-openrouter.js';

const { values } = parseArgs({
  options: {
    'first-token-ms': { type: 'string', default: '300' },
    'token-interval-ms': { type: 'string', default: '33' },
    'token-chars': { type: 'string', default: '4' },
  },
});

const fake = await FakeOpenRouter.start({
  host: '127.0.0.1',
  port: 0,
  firstTokenDelayMs: Number(values['first-token-ms']),
  tokenIntervalMs: Number(values['token-interval-ms']),
  tokenChars: Number(values['token-chars']),
});
let completed = 0;
fake.events.on('response-end', () => {
  completed++;
});
// The fake keeps every request (body included); a load test makes tens of thousands.
const trim = setInterval(() => {
  fake.requests.splice(0, fake.requests.length);
}, 5_000);
process.stdout.write(`FAKE_LLM_URL ${fake.baseUrl}\n`);

const stop = (): void => {
  clearInterval(trim);
  process.stdout.write(`FAKE_LLM_COMPLETED ${completed}\n`);
  void fake.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
