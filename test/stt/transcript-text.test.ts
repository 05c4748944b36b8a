import t from 'tap';
import { joinTranscript } from '../../src/stt/transcript-text.js';

t.test('English segments are joined with single spaces', async (t) => {
  t.equal(joinTranscript(['hello world', 'how are  you ']), 'hello world how are you');
  t.equal(joinTranscript(['', 'alpha', '   ', 'bravo']), 'alpha bravo');
  t.equal(joinTranscript([]), '');
});

t.test('spaces Vosk puts between Chinese characters are removed, across segments too', async (t) => {
  t.equal(joinTranscript(['我 想 订 一 张 票', '去 北京']), '我想订一张票去北京');
  t.equal(joinTranscript(['你好 ， 世界']), '你好，世界');
});

t.test('latin words inside Chinese text keep their spaces', async (t) => {
  t.equal(joinTranscript(['我 的 iphone 坏 了']), '我的 iphone 坏了');
  t.equal(joinTranscript(['打开 wi fi 设置']), '打开 wi fi 设置');
});

t.test('Japanese kana are joined like Han; Korean keeps its word spaces', async (t) => {
  t.equal(joinTranscript(['こんにちは 世界']), 'こんにちは世界');
  t.equal(joinTranscript(['안녕 하세요']), '안녕 하세요');
});
