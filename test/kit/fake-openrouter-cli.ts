// `npm run fake-llm -- --port 8787`: a fake OpenRouter for running voxgate without a key.
// Point voxgate at the printed URL: OPENROUTER_BASE_URL=<url> OPENROUTER_API_KEY=anything.
import { parseArgs } from 'node:util';
import { FakeOpenRouter } from './fake-openrouter.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'first-token-ms': { type: 'string', default: '400' },
    'token-interval-ms': { type: 'string', default: '30' },
  },
});

const port = Number(values.port ?? process.env.PORT ?? 8787);
const fake = await FakeOpenRouter.start({
  host: values.host,
  port,
  firstTokenDelayMs: Number(values['first-token-ms']),
  tokenIntervalMs: Number(values['token-interval-ms']),
});
fake.events.on('request', (record: { index: number; kind: string }) => {
  process.stdout.write(`request #${record.index} (${record.kind})\n`);
});
process.stdout.write(`fake OpenRouter listening on ${fake.baseUrl}\n`);

const stop = (): void => {
  void fake.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
