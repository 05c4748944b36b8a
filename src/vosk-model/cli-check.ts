// npm run model:check -- DIR [--timeout-ms N]
import { parseArgs } from 'node:util';

import { checkModel } from './check.js';

const USAGE = 'usage: npm run model:check -- DIR [--timeout-ms N]\n';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { 'timeout-ms': { type: 'string' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const dir = parsed.positionals[0];
  const timeoutMs = parsed.values['timeout-ms'] === undefined ? undefined : Number(parsed.values['timeout-ms']);
  if (dir === undefined || parsed.positionals.length > 1 || (timeoutMs !== undefined && !(timeoutMs > 0))) {
    process.stderr.write(USAGE);
    return 2;
  }
  const result = await checkModel(dir, timeoutMs === undefined ? {} : { timeoutMs });
  if (!result.ok) {
    process.stderr.write(`FAIL ${result.dir}: ${result.reason}\n`);
    return 1;
  }
  const checked = result.hasToneTable ? 'text checked' : 'no tones.json, text not checked';
  process.stdout.write(
    `OK ${result.dir}: loaded in ${result.loadMs.toFixed(1)} ms, decoded ${result.audioSeconds.toFixed(1)} s ` +
      `of test audio in ${result.decodeMs.toFixed(1)} ms as ${JSON.stringify(result.text)} (${checked})\n`,
  );
  return 0;
}

process.exitCode = await main();
