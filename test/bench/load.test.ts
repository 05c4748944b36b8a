import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { runBenchmark } from '../../bench/load/benchmark.js';
import { percentiles } from '../../bench/load/stats.js';
import { niceTicks } from '../../bench/load/svg-chart.js';

// The load generator itself: a short ramp of 3 simulated app users against a real voxgate (tone model,
// real libvosk, fake OpenRouter), each in the app's loop, must finish with no errors, correct transcripts,
// and sane figures in its table, JSON and SVG.

t.test('3 users against the tone model: no errors, exact transcripts, ordered percentiles, files written', async (t) => {
  const dir = t.testdir();
  const lines: string[] = [];
  const output = await runBenchmark([
    '--model', 'tone', '--model-dir', join(dir, 'model'),
    '--steps', '1,3', '--step-seconds', '13', '--warmup-seconds', '2', '--stagger-seconds', '1',
    '--procs', '2', '--words', '2-3', '--think-ms', '300',
    '--llm-first-token-ms', '100', '--llm-tokens-per-second', '100',
    '--out', join(dir, 'result'),
  ], (line) => lines.push(line));

  t.equal(output.runs.length, 1);
  const run = output.runs[0]!;
  t.equal(run.aborted, null, 'the run was not aborted');
  t.same(run.steps.map((step) => step.users), [1, 3]);
  for (const step of run.steps) {
    t.same(step.errors, {}, `${step.users} users: no errors (wrong transcripts count as errors)`);
    t.ok(step.turns >= 1, `${step.users} users: at least one full turn`);
    for (const metric of ['stt_ms', 'first_delta_ms', 'llm_response_ms'] as const) {
      const l = step.latency[metric];
      t.ok(l.count > 0, `${step.users} users: ${metric} has samples`);
      t.ok(l.p50! > 0 && l.p50! <= l.p95! && l.p95! <= l.p99! && l.p99! <= l.max!, `${step.users} users: ${metric} p50 <= p95 <= p99 <= max`);
    }
    t.ok(step.latency.first_delta_ms.p50! >= 100, 'the first delta comes after the fake LLM\'s first token delay');
    t.ok(step.latency.first_delta_ms.p50! <= step.latency.llm_response_ms.p50!, 'the first delta precedes the full response');
    t.ok(step.serverCpuPercentOfCore > 0, 'server CPU measured');
    t.ok(step.serverRssMaxMiB > 0, 'server RSS measured');
  }
  t.equal(run.capacity.users, 3, 'both steps pass the 300 ms rule');
  t.match(output.text, /\| users \| turns \| errors \|/, 'a table is printed');

  t.ok(existsSync(output.jsonPath), 'JSON written');
  const json = JSON.parse(readFileSync(output.jsonPath, 'utf8')) as { machine: { cores: number }; runs: Array<{ steps: unknown[] }> };
  t.ok(json.machine.cores >= 1);
  t.equal(json.runs[0]!.steps.length, 2);

  const svg = readFileSync(output.svgPath!, 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.equal(svg.match(/<g class="panel">/g)?.length, 2, 'two panels');
  t.ok((svg.match(/<polyline class="series"/g)?.length ?? 0) >= 6, 'a line per percentile');
  t.match(svg, /simulated users \(N\)/, 'x axis label');
  t.match(svg, /latency \(ms\)/, 'y axis label');
  t.match(svg, /class="threshold"/, 'the 300 ms line');
  t.match(svg, /data-label="p99"/);
});

t.test('percentiles are nearest-rank and ordered', async (t) => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  t.match(percentiles(values), { count: 100, p50: 50, p95: 95, p99: 99, max: 100 });
  t.match(percentiles([]), { count: 0, p50: null });
  t.same(niceTicks(270), [0, 100, 200, 300]);
  t.same(niceTicks(0.4), [0, 0.1, 0.2, 0.3, 0.4]);
});
