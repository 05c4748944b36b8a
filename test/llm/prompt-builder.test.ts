import { mkdtempSync, readdirSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { DEFAULT_PROMPT_DIRS, defaultPromptDirs, PROMPT_DIALOGUE_MAX_CHARS, PROMPT_MODIFICATIONS_MAX_CHARS, PromptBuilder } from '../../src/llm/prompt-builder.js';

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

t.test('a long conversation is cut to the newest messages that fit the budget, session before history', async (t) => {
  // One conversation_start of 16 MiB (800 history messages of 20,000 characters) made every
  // manual_generate build and send a 16-million-character prompt (~240 ms of the event loop each, at up
  // to 50 events per second), far past any model's context.
  const message = (tag: string, i: number) => ({ messageId: `${tag}${i}`, sender: tag, content: `${tag}${i}:${'x'.repeat(5_000)}` });
  const history = Array.from({ length: 3_200 }, (_, i) => message('h', i));
  const context = {
    ...EMPTY_CONTEXT,
    historyMessages: history,
    sessionMessages: Array.from({ length: 3 }, (_, i) => message('s', i)),
    focusedMessages: history, // manual_generate may focus up to 1,000 ids
    modifications: Array.from({ length: 100 }, (_, i) => `mod${i}:${'y'.repeat(2_000)}`),
  };
  const text = new PromptBuilder().suggestions(context, 3).messages.map((m) => m.content).join('\n');
  const bound = 2 * PROMPT_DIALOGUE_MAX_CHARS + PROMPT_MODIFICATIONS_MAX_CHARS + 10_000;
  t.ok(text.length <= bound, `bounded (${text.length} characters, at most ${bound})`);
  for (const newest of ['s2:', 's0:', 'h3199:', 'mod99:']) t.ok(text.includes(newest), `keeps ${newest}`);
  for (const oldest of ['h0:', 'h3000:', 'mod0:']) t.notOk(text.includes(oldest), `leaves out ${oldest}`);
  t.match(text, /更早的 \d+ 条略去/, 'says that earlier messages were left out');
  const small = new PromptBuilder().suggestions({ ...EMPTY_CONTEXT, historyMessages: [message('h', 0)] }, 3).messages.map((m) => m.content).join('\n');
  t.notMatch(small, /略去/, 'nothing said when everything fits');
});
