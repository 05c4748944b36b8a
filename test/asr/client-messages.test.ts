import t from 'tap';
import { MAX_PHRASES, parseAsrText } from '../../src/asr/client-messages.js';

t.test('eof and reset in any JSON spelling', async (t) => {
  for (const text of ['{"eof" : 1}', '{"eof":1}', ' { "eof": 1 } ']) t.same(parseAsrText(text), { ok: true, message: { kind: 'eof' } }, text);
  for (const text of ['{"reset" : 1}', '{"reset":1}']) t.same(parseAsrText(text), { ok: true, message: { kind: 'reset' } }, text);
});

t.test('config fields become typed settings; unknown fields are ignored', async (t) => {
  const parsed = parseAsrText(JSON.stringify({ config: { sample_rate: 8000, words: 0, max_alternatives: 2, phrase_list: ['alpha', 'bravo'], model: 'en', extra: true } }));
  t.same(parsed, { ok: true, message: { kind: 'config', config: { sampleRate: 8000, words: false, maxAlternatives: 2, phraseList: ['alpha', 'bravo'], model: 'en' } } });
  t.same(parseAsrText('{"config": {}}'), { ok: true, message: { kind: 'config', config: {} } });
});

t.test('the configs vosk-server\'s own test clients send are accepted', async (t) => {
  // websocket/test_words.py (multi-line, words as 0) and test_alternatives.py (20 alternatives).
  const words = parseAsrText(`{"config" :
                    { "phrase_list" : ["zero one two three four five", "six seven eight nine oh"],
                      "sample_rate" : 8000,
                      "words" : 0}}`);
  t.same(words, { ok: true, message: { kind: 'config', config: { sampleRate: 8000, words: false, phraseList: ['zero one two three four five', 'six seven eight nine oh'] } } });
  t.same(parseAsrText('{"config" : { "max_alternatives" : 20, "sample_rate" : 16000 } }'), { ok: true, message: { kind: 'config', config: { sampleRate: 16000, maxAlternatives: 20 } } });
  t.same(parseAsrText('{ "config" : { "sample_rate" : 16000 } }'), { ok: true, message: { kind: 'config', config: { sampleRate: 16000 } } });
});

t.test('anything else is INVALID_EVENT_DATA naming the problem', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['hello', /not JSON/],
    ['[1]', /not a JSON object/],
    ['{"eof": 2}', /no config, eof or reset/],
    ['{"config": {"sample_rate": 16000.5}}', /config\.sample_rate/],
    ['{"config": {"sample_rate": 4000}}', /config\.sample_rate/],
    ['{"config": {"max_alternatives": 101}}', /config\.max_alternatives/],
    ['{"config": {"phrase_list": "alpha"}}', /config\.phrase_list/],
    [JSON.stringify({ config: { phrase_list: new Array(MAX_PHRASES + 1).fill('a') } }), /config\.phrase_list/],
    ['{"config": "16000"}', /config/],
  ];
  for (const [text, details] of cases) {
    const parsed = parseAsrText(text);
    t.equal(parsed.ok, false, text.slice(0, 60));
    if (!parsed.ok) {
      t.equal(parsed.error.code, 'INVALID_EVENT_DATA');
      t.match(parsed.error.details, details);
    }
  }
});
