import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { EnvSchema } from '../../src/config/schema.js';
import { PROJECT_ROOT } from '../../src/version.js';

// Fails when a setting is added without documenting it in .env.example and docs/configuration.md.

const keys = Object.keys(EnvSchema.shape).sort();

t.test('.env.example lists every key, and only known keys', async (t) => {
  const example = readFileSync(join(PROJECT_ROOT, '.env.example'), 'utf8');
  const listed = [...example.matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((match) => match[1]!).sort();
  t.same(listed, keys);
});

t.test('docs/configuration.md documents every key, and only known keys', async (t) => {
  const docs = readFileSync(join(PROJECT_ROOT, 'docs/configuration.md'), 'utf8');
  const documented = [...docs.matchAll(/^\| `([A-Z_][A-Z0-9_]*)` \|/gm)].map((match) => match[1]!).sort();
  t.same(documented, keys);
});

t.test('.env.example itself is a valid configuration', async (t) => {
  const { loadConfig } = await import('../../src/config/load.js');
  t.doesNotThrow(() => loadConfig({ env: {}, envFile: join(PROJECT_ROOT, '.env.example') }));
});
