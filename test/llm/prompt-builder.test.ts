import { mkdtempSync, readdirSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { DEFAULT_PROMPT_DIRS, defaultPromptDirs, PromptBuilder } from '../../src/llm/prompt-builder.js';

const EMPTY_CONTEXT = {
  scenarioDescription: null, userProfile: null, targetProfile: null, historyMessages: [], sessionMessages: [],
  focusedMessages: [], userIntent: null, modifications: [],
};

t.test('the dist/ build finds the prompts in src/ (tsc does not copy .md files)', async (t) => {
  // tsconfig.build.json (rootDir ".") compiles src/llm/prompt-builder.ts to dist/src/llm/prompt-builder.js.
  const compiled = new URL('../../dist/src/llm/prompt-builder.js', import.meta.url).href;
  const sources = fileURLToPath(new URL('../../src/llm/prompts/', import.meta.url));
  t.ok(defaultPromptDirs(compiled).includes(sources));
  t.equal(DEFAULT_PROMPT_DIRS[0], sources, 'under tsx the module sits next to its prompts');
  t.ok(new PromptBuilder());
});

t.test('empty sections render as the empty marker, no placeholder survives', async (t) => {
  const prompt = new PromptBuilder().suggestions(EMPTY_CONTEXT, 3);
  const text = prompt.messages.map((m) => m.content).join('\n');
  t.notMatch(text, /\{\{/);
  t.match(text, /（无）/);
});

t.test('promptsDir overrides the folder, and an unknown placeholder fails at construction', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prompts-'));
  const source = DEFAULT_PROMPT_DIRS[0] ?? '';
  for (const file of readdirSync(source)) copyFileSync(join(source, file), join(dir, file));
  writeFileSync(join(dir, 'suggestions.task.md'), 'custom {{count}}');
  const prompt = new PromptBuilder({ promptsDir: dir }).suggestions(EMPTY_CONTEXT, 2);
  t.match(prompt.messages[1]?.content, /custom 2$/);
  writeFileSync(join(dir, 'suggestions.task.md'), 'broken {{nope}}');
  t.throws(() => new PromptBuilder({ promptsDir: dir }), /unknown placeholder \{\{nope\}\}/);
});
