// npm run model:download -- NAME [--base-url URL] [--dest model/]
import { parseArgs } from 'node:util';

import { DEFAULT_MODEL_BASE_URL, downloadModel } from './download.js';

const USAGE =
  'usage: npm run model:download -- NAME [--base-url URL] [--dest DIR]\n' +
  `  e.g. vosk-model-small-en-us-0.15 or vosk-model-small-cn-0.22 from ${DEFAULT_MODEL_BASE_URL}\n`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { 'base-url': { type: 'string' }, dest: { type: 'string' } },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const name = parsed.positionals[0];
  if (name === undefined || parsed.positionals.length > 1) {
    process.stderr.write(USAGE);
    return 2;
  }
  const baseUrl = parsed.values['base-url'];
  const destDir = parsed.values.dest;
  const result = await downloadModel(name, {
    ...(baseUrl === undefined ? {} : { baseUrl }),
    ...(destDir === undefined ? {} : { destDir }),
  });
  const megabytes = (result.zipBytes / 1e6).toFixed(1);
  if (!result.check.ok) {
    process.stderr.write(`downloaded ${megabytes} MB into ${result.dir}, but the check failed: ${result.check.reason}\n`);
    return 1;
  }
  process.stdout.write(
    `downloaded ${megabytes} MB into ${result.dir}; libvosk loads it in ${result.check.loadMs.toFixed(0)} ms and decodes\n`,
  );
  return 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`model:download failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
