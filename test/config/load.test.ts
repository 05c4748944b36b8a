import t from 'tap';
import { loadConfig } from '../../src/config/load.js';

t.test('defaults: the replaced backend\'s keys with the same meaning', async (t) => {
  const config = loadConfig({ env: {}, envFile: null });
  t.equal(config.port, 8000);
  t.equal(config.host, '0.0.0.0');
  t.equal(config.logLevel, 'info');
  t.equal(config.llm.engine, 'mock', 'no key: mock LLM');
  t.equal(config.stt.engine, 'auto');
  t.equal(config.allowedOrigins, null);
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.llm), 'frozen');
});

t.test('DEBUG, USE_REAL_VOSK and lists', async (t) => {
  t.equal(loadConfig({ env: { DEBUG: 'true' }, envFile: null }).logLevel, 'debug');
  t.equal(loadConfig({ env: { DEBUG: 'true', LOG_LEVEL: 'warn' }, envFile: null }).logLevel, 'warn');
  t.equal(loadConfig({ env: { USE_REAL_VOSK: 'true' }, envFile: null }).stt.engine, 'vosk');
  t.equal(loadConfig({ env: { USE_REAL_VOSK: 'false' }, envFile: null }).stt.engine, 'mock');
  t.equal(loadConfig({ env: { USE_REAL_VOSK: 'false', STT_ENGINE: 'vosk' }, envFile: null }).stt.engine, 'vosk', 'STT_ENGINE wins');
  t.same(loadConfig({ env: { ALLOWED_ORIGINS: 'https://a.example, https://b.example' }, envFile: null }).allowedOrigins, [
    'https://a.example',
    'https://b.example',
  ]);
  const llm = loadConfig({ env: { OPENROUTER_API_KEY: 'k', OPENROUTER_BASE_URL: 'http://127.0.0.1:9/api/v1/' }, envFile: null }).llm;
  t.equal(llm.engine, 'openrouter');
  t.equal(llm.baseUrl, 'http://127.0.0.1:9/api/v1');
  t.equal(loadConfig({ env: { PORT: '' }, envFile: null }).port, 8000, 'empty means default');
  t.equal(loadConfig({ env: {}, envFile: null }).stt.targetFinishLatencyMs, 250);
  t.equal(loadConfig({ env: { STT_TARGET_FINISH_LATENCY_MS: '150' }, envFile: null }).stt.targetFinishLatencyMs, 150);
  t.throws(() => loadConfig({ env: { STT_TARGET_FINISH_LATENCY_MS: '0' }, envFile: null }), { code: 'CONFIG_INVALID', message: /STT_TARGET_FINISH_LATENCY_MS="0"/ });
  t.same(loadConfig({ env: { TRUSTED_PROXIES: '10.0.0.0/8, ::1' }, envFile: null }).trustedProxies, ['10.0.0.0/8', '::1']);
  t.throws(() => loadConfig({ env: { TRUSTED_PROXIES: '10.0.0.0/8,nginx' }, envFile: null }), {
    code: 'CONFIG_INVALID',
    message: /TRUSTED_PROXIES="10\.0\.0\.0\/8,nginx": "nginx" is not an IP address or CIDR network/,
  });
  // Removed in issue 13 (admission redesign): an old .env that still sets it must start.
  t.doesNotThrow(() => loadConfig({ env: { STT_MAX_EVENT_LOOP_DELAY_MS: '100' }, envFile: null }), 'a removed STT key is ignored');
});

t.test('every problem is named with key, value and expectation', async (t) => {
  t.throws(
    () => loadConfig({ env: { PORT: '99999', DEBUG: 'maybe', OPENROUTER_BASE_URL: 'ftp://x', STT_ENGINE: 'whisper' }, envFile: null }),
    {
      code: 'CONFIG_INVALID',
      message: /PORT="99999": expected an integer 0\.\.65535.*DEBUG="maybe": expected true or false.*OPENROUTER_BASE_URL="ftp:\/\/x": expected an http\(s\) URL.*STT_ENGINE="whisper": expected auto, vosk or mock/s,
    },
  );
});

t.test('the send buffer limit leaves room above the high-water mark', async (t) => {
  t.throws(() => loadConfig({ env: { WEBSOCKET_HIGH_WATER_BYTES: '262144', WEBSOCKET_MAX_BUFFERED_BYTES: '300000' }, envFile: null }), {
    code: 'CONFIG_INVALID',
    message: /WEBSOCKET_MAX_BUFFERED_BYTES="300000": expected at least WEBSOCKET_HIGH_WATER_BYTES \+ 65536 \(327680\)/,
  });
});
