import t from 'tap';
import { SseDecoder } from '../../src/llm/openrouter/sse.js';
import { SuggestionsParser } from '../../src/llm/openrouter/suggestions-parser.js';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// The model's output text: a fence, escapes of every kind, \u escapes (one surrogate pair), raw emoji and
// Chinese, an extra member to skip.
const MODEL_OUTPUT =
  '```json\n{ "note": {"a": [1, "x\\"}"]}, "suggestions" : [ "你好，\\"朋友\\"\\n第二行 \\u4f60\\ud83d\\ude00 😀",\n' +
  '  "b\\\\c\\/d\\t", "三" ], "n": 3 }\n```';
const EXPECTED = ['你好，"朋友"\n第二行 你😀 😀', 'b\\c/d\t', '三'];

function run(pieces: readonly string[]): { result: string[]; deltas: Array<[number, string]> } {
  const deltas: Array<[number, string]> = [];
  const parser = new SuggestionsParser((index, delta) => deltas.push([index, delta]));
  for (const piece of pieces) parser.push(piece);
  return { result: [...parser.end()], deltas };
}

function joined(deltas: Array<[number, string]>): string[] {
  const texts: string[] = [];
  for (const [index, delta] of deltas) texts[index] = (texts[index] ?? '') + delta;
  return texts;
}

t.test('parses the suggestions object, fence and skipped members included', async (t) => {
  const { result, deltas } = run([MODEL_OUTPUT]);
  t.same(result, EXPECTED);
  t.same(joined(deltas), EXPECTED);
});

t.test('gives the same result when the output is split at every character offset', async (t) => {
  for (let k = 0; k <= MODEL_OUTPUT.length; k++) {
    const { result, deltas } = run([MODEL_OUTPUT.slice(0, k), MODEL_OUTPUT.slice(k)]);
    if (JSON.stringify(result) !== JSON.stringify(EXPECTED)) t.fail(`split at ${k}: ${JSON.stringify(result)}`);
    if (JSON.stringify(joined(deltas)) !== JSON.stringify(EXPECTED)) t.fail(`deltas split at ${k}`);
    for (const [, delta] of deltas) if (LONE_SURROGATE.test(delta)) t.fail(`half a surrogate pair at ${k}`);
  }
  const oneByOne = run(Array.from(MODEL_OUTPUT.split('')));
  t.same(oneByOne.result, EXPECTED, 'one UTF-16 unit at a time');
  t.notOk(oneByOne.deltas.some(([, d]) => LONE_SURROGATE.test(d)), 'no delta ends inside a surrogate pair');
});

t.test('emits one delta per push for plain text, and nothing before a string starts', async (t) => {
  const { deltas } = run(['{"suggestions":["ab', 'c\\n', 'd"', ',"e"]}']);
  t.same(deltas, [[0, 'ab'], [0, 'c\n'], [0, 'd'], [1, 'e']]);
});

t.test('rejects output that is not the suggestions JSON', async (t) => {
  const cases = ['{"suggestions": ["ok", 42]}', '{"suggestions": "ok"}', '{"suggestions": ["a\\x"]}', '{"suggestions": ["\\u12G4"]}'];
  for (const text of cases) {
    t.throws(() => run([text]), { code: 'LLM_SERVICE_ERROR' }, text);
  }
  t.throws(() => run(['Sure! Here are three replies: 1. Yes 2. No']), { code: 'LLM_SERVICE_ERROR' }, 'no JSON at all');
  t.throws(() => run(['{"suggestions": ["cut off']), { code: 'LLM_SERVICE_ERROR' }, 'truncated');
});

t.test('accepts an empty list', async (t) => {
  t.same(run(['{"suggestions": []}']).result, []);
});

// The same response as OpenRouter sends it: SSE bytes with keep-alive comments, one token per chunk.
function sseBytes(output: string): Uint8Array {
  const points = Array.from(output);
  let sse = ': OPENROUTER PROCESSING\n\n';
  for (let i = 0; i < points.length; i += 3) {
    const content = points.slice(i, i + 3).join('');
    sse += `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    if (i % 12 === 0) sse += ': OPENROUTER PROCESSING\n\n';
  }
  sse += `data: ${JSON.stringify({ choices: [], usage: { total_tokens: 9 } })}\n\ndata: [DONE]\n\n`;
  return new TextEncoder().encode(sse);
}

function runSse(bytes: Uint8Array, cuts: readonly number[]): { result: string[]; deltas: Array<[number, string]>; isDone: boolean } {
  const deltas: Array<[number, string]> = [];
  const parser = new SuggestionsParser((index, delta) => deltas.push([index, delta]));
  let isDone = false;
  const decoder = new SseDecoder((data) => {
    if (data === '[DONE]') {
      isDone = true;
      return;
    }
    const chunk = JSON.parse(data) as { choices: Array<{ delta: { content: string } }> };
    const content = chunk.choices[0]?.delta.content;
    if (content !== undefined) parser.push(content);
  });
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    decoder.push(bytes.subarray(from, cut));
    from = cut;
  }
  decoder.end();
  return { result: [...parser.end()], deltas, isDone };
}

t.test('the SSE bytes split at every byte offset (inside UTF-8 characters and \\u escapes) parse the same', async (t) => {
  const bytes = sseBytes(MODEL_OUTPUT);
  let failures = 0;
  for (let k = 0; k <= bytes.length; k++) {
    const { result, deltas, isDone } = runSse(bytes, [k]);
    const ok = isDone && JSON.stringify(result) === JSON.stringify(EXPECTED) &&
      JSON.stringify(joined(deltas)) === JSON.stringify(EXPECTED) &&
      !deltas.some(([, d]) => d.includes('\ufffd') || LONE_SURROGATE.test(d));
    if (!ok) failures++;
  }
  t.equal(failures, 0, `${bytes.length + 1} splits`);
  const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
  t.same(runSse(bytes, everyByte).result, EXPECTED, 'one byte per chunk');
});

t.test('the SSE decoder skips comments and reports broken framing', async (t) => {
  const seen: string[] = [];
  const decoder = new SseDecoder((data) => seen.push(data));
  decoder.push(new TextEncoder().encode(': OPENROUTER PROCESSING\n\ndata: a\n\n:x\ndata: b\n\n'));
  t.same(seen, ['a', 'b']);
  const endless = new TextEncoder().encode(`data: ${'x'.repeat(2 * 1024 * 1024)}`);
  t.throws(() => decoder.push(endless), { code: 'LLM_SERVICE_ERROR' }, 'an event that never ends');
});
