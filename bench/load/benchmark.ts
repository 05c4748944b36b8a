// The load test as a function of its command line: options -> runs -> table (stdout), JSON and SVG files.
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { parseClusterSetups, type ClusterSetup } from './cluster.js';
import { runIdle, type IdleRunResult } from './idle-run.js';
import { parseEnvSpec, runLoad, type LoadRunOptions, type LoadRunResult } from './load-run.js';
import { defaultModelCacheDir, prepareModel, type ModelKind } from './model.js';
import { loadAverage1m } from './proc-stats.js';
import { openBlasEnv } from './spawn.js';
import { capacity } from './stats.js';
import { describe, idleSummary, loadTable, ratioTable } from './report.js';
import { renderChart, type Panel, type Series } from './svg-chart.js';

export const USAGE = `npx tsx bench/load/run.ts [options]

Load:      --steps 25,50,100,150,200  --step-seconds 30  --warmup-seconds 5  --stagger-seconds 5
           --procs 2 (client processes)  --audio base64|binary  --env "KEY=value ..." (server)
           --think-ms 1000  --timeout-ms 10000  --words 3-5  --response-count 3  --seed 1
           --threshold-ms 300 (capacity: p99 message_end->message_recorded below it, no errors)
           --fresh-server-per-step (each step starts from 0 users on a new server: an overloaded step
             cannot leave the next one a server in a bad state)
Compare:   --a "KEY=value ..." --b "KEY=value ..." [--audio-a binary --audio-b base64]
Cluster:   --cluster 1,2+haproxy (one setup per entry, one after the other, same users and steps: N voxgate
             nodes with SESSION_STORE=redis on a fresh local redis-server, AOF always; +haproxy: behind the
             shipped deploy/haproxy.cfg; ratios of each setup to the first are printed)
Idle:      --idle 20000  --idle-batch 500  --idle-hold-seconds 10
Model/LLM: --model bench|tone  --model-dir DIR (cache; default in the temp dir)
           --llm-first-token-ms 300  --llm-tokens-per-second 30
Output:    --out PREFIX (writes PREFIX.json and PREFIX.svg; default in the temp dir)  --open-files 65535`;

export interface BenchmarkOutput {
  runs: LoadRunResult[];
  idle: IdleRunResult | null;
  jsonPath: string;
  svgPath: string | null;
  text: string;
}

const PERCENTILE_COLORS = { p50: '#1f77b4', p95: '#ff7f0e', p99: '#d62728' } as const;
/** How the lines of the first, second, third... run of a comparison are drawn (colours are percentiles). */
const RUN_LINES: ReadonlyArray<{ dashed: boolean | string; name: string }> = [
  { dashed: false, name: 'solid' },
  { dashed: true, name: 'dashed' },
  { dashed: '2,3', name: 'dotted' },
  { dashed: '10,3,2,3', name: 'dash-dot' },
];

/** Upper bound of any count option (users, connections): the run must stay bounded. */
const MAX_COUNT = 100_000;

function intList(text: string, name: string): number[] {
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1 || v > MAX_COUNT)) {
    throw new Error(`--${name}: expected integers 1..${MAX_COUNT}, got ${text}`);
  }
  return values;
}

function positive(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name}: expected a number >= 0, got ${text}`);
  return value;
}

function audioMode(text: string, name: string): 'base64' | 'binary' {
  if (text !== 'base64' && text !== 'binary') throw new Error(`--${name}: expected base64 or binary, got ${text}`);
  return text;
}

export function chartOf(runs: LoadRunResult[], thresholdMs: number): string {
  const isComparison = runs.length > 1;
  const names = isComparison ? runs.map((run) => run.label) : [''];
  const seriesOf = (metric: 'stt_ms' | 'first_delta_ms' | 'llm_response_ms', percentile: 'p50' | 'p95' | 'p99', run: LoadRunResult, index: number,
    label: string): Series => ({
    label: `${isComparison ? `${names[index]} ` : ''}${label}`,
    color: PERCENTILE_COLORS[percentile],
    dashed: RUN_LINES[index % RUN_LINES.length]!.dashed,
    points: run.steps.map((step) => [step.users, step.latency[metric][percentile]]),
  });
  const percentilesList = ['p50', 'p95', 'p99'] as const;
  const first = runs[0]!;
  const sttPanel: Panel = {
    title: 'message_end -> message_recorded',
    thresholdMs,
    series: runs.flatMap((run, i) => percentilesList.map((p) => seriesOf('stt_ms', p, run, i, p))),
    // Errors per step (A/B when comparing): a step with errors fails the capacity rule whatever its latency.
    notes: first.steps.map((step) => [step.users,
      `${runs.map((run) => run.steps.find((s) => s.users === step.users)?.errorTotal ?? '-').join('/')} err`]),
  };
  const llmPanel: Panel = {
    title: 'manual_generate -> first delta / llm_response',
    series: runs.flatMap((run, i) => [
      ...percentilesList.map((p) => seriesOf('first_delta_ms', p, run, i, `1st delta ${p}`)),
      { ...seriesOf('llm_response_ms', 'p99', run, i, 'llm_response p99'), color: '#2ca02c' },
    ]),
  };
  const title = `voxgate load test (${first.model} model, ${first.startedAt.slice(0, 16).replace('T', ' ')} UTC)`;
  const subtitle = isComparison
    ? runs.map((run, i) => `${names[i]}${i === 0 ? '' : ` (${RUN_LINES[i % RUN_LINES.length]!.name})`}: ${describe(run)}`).join('  |  ')
    : `${describe(first)}${first.settings.freshServerPerStep ? ', fresh server per step' : ''}; capacity ${first.capacity.users ?? 'none'} users (${first.capacity.rule})`;
  return renderChart(title, subtitle, [sttPanel, llmPanel]);
}

/** One run per step, each on its own fresh server, merged into one result. */
async function runStepsApart(options: LoadRunOptions): Promise<LoadRunResult> {
  const parts: LoadRunResult[] = [];
  for (const users of options.steps) {
    const part = await runLoad({ ...options, steps: [users] });
    parts.push(part);
    if (part.aborted !== null) break;
  }
  const first = parts[0]!;
  const steps = parts.flatMap((part) => part.steps);
  const warnings: Record<string, number> = {};
  for (const part of parts) for (const [message, count] of Object.entries(part.serverWarnings)) warnings[message] = (warnings[message] ?? 0) + count;
  return {
    ...first,
    settings: { ...first.settings, freshServerPerStep: true },
    steps,
    capacity: { rule: first.capacity.rule, ...capacity(steps, options.capacityRule) },
    serverWarnings: warnings,
    proxyEvents: parts.flatMap((part) => part.proxyEvents),
    aborted: parts.find((part) => part.aborted !== null)?.aborted ?? null,
  };
}

export async function runBenchmark(argv: string[], log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<BenchmarkOutput> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '25,50,100,150,200' },
      'step-seconds': { type: 'string', default: '30' },
      'warmup-seconds': { type: 'string', default: '5' },
      'stagger-seconds': { type: 'string', default: '5' },
      procs: { type: 'string', default: '2' },
      audio: { type: 'string', default: 'base64' },
      env: { type: 'string', default: '' },
      a: { type: 'string' },
      b: { type: 'string' },
      'audio-a': { type: 'string' },
      'audio-b': { type: 'string' },
      'think-ms': { type: 'string', default: '1000' },
      'timeout-ms': { type: 'string', default: '10000' },
      words: { type: 'string', default: '3-5' },
      'response-count': { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      'threshold-ms': { type: 'string', default: '300' },
      idle: { type: 'string' },
      'idle-batch': { type: 'string', default: '500' },
      'idle-hold-seconds': { type: 'string', default: '10' },
      model: { type: 'string', default: 'bench' },
      'model-dir': { type: 'string' },
      'llm-first-token-ms': { type: 'string', default: '300' },
      'llm-tokens-per-second': { type: 'string', default: '30' },
      out: { type: 'string' },
      'open-files': { type: 'string', default: '65535' },
      'fresh-server-per-step': { type: 'boolean', default: false },
      cluster: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    return { runs: [], idle: null, jsonPath: '', svgPath: null, text: USAGE };
  }
  const modelKind = values.model as ModelKind;
  if (modelKind !== 'bench' && modelKind !== 'tone') throw new Error(`--model: expected bench or tone, got ${values.model}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const prefix = resolve(values.out ?? join(tmpdir(), `voxgate-load-${stamp}`));
  await mkdir(dirname(prefix), { recursive: true });
  const openFiles = positive(values['open-files'], 'open-files');
  const model = await prepareModel(modelKind, values['model-dir'] ?? defaultModelCacheDir(modelKind), log);
  const machine = {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    /** Forwarded to every child process (the server's libvosk reads OPENBLAS_CORETYPE). */
    openBlas: openBlasEnv(),
    loadAverage1mAtStart: loadAverage1m(),
  };
  log(`machine: ${machine.cores} cores (${machine.cpu}), load average ${machine.loadAverage1mAtStart}`);
  const processes = Math.max(1, Math.round(positive(values.procs, 'procs')));

  if (values.idle !== undefined) {
    const idle = await runIdle({
      target: intList(values.idle, 'idle')[0]!,
      batch: intList(values['idle-batch'], 'idle-batch')[0]!,
      processes,
      holdSeconds: positive(values['idle-hold-seconds'], 'idle-hold-seconds'),
      timeoutMs: positive(values['timeout-ms'], 'timeout-ms'),
      model,
      serverEnv: parseEnvSpec(values.env),
      openFiles,
      log,
    });
    const jsonPath = `${prefix}-idle.json`;
    await writeFile(jsonPath, `${JSON.stringify({ machine, idle }, null, 2)}\n`);
    const text = idleSummary(idle);
    return { runs: [], idle, jsonPath, svgPath: null, text };
  }

  const [minWords, maxWords] = values.words.split('-').map(Number) as [number, number?];
  const wordsMax = maxWords ?? minWords;
  if (!Number.isInteger(minWords) || minWords < 1 || !Number.isInteger(wordsMax) || wordsMax < minWords) throw new Error(`--words: expected like 3-5, got ${values.words}`);
  const stepSeconds = positive(values['step-seconds'], 'step-seconds');
  const warmupSeconds = Math.min(positive(values['warmup-seconds'], 'warmup-seconds'), stepSeconds / 2);
  const thresholdMs = positive(values['threshold-ms'], 'threshold-ms');
  const base: Omit<LoadRunOptions, 'label' | 'serverEnv' | 'audio'> = {
    model,
    steps: intList(values.steps, 'steps'),
    stepSeconds,
    warmupSeconds,
    staggerSeconds: positive(values['stagger-seconds'], 'stagger-seconds'),
    processes,
    thinkMs: positive(values['think-ms'], 'think-ms'),
    timeoutMs: positive(values['timeout-ms'], 'timeout-ms'),
    minWords,
    maxWords: wordsMax,
    responseCount: intList(values['response-count'], 'response-count')[0]!,
    seed: positive(values.seed, 'seed'),
    llmFirstTokenMs: positive(values['llm-first-token-ms'], 'llm-first-token-ms'),
    llmTokenIntervalMs: 1000 / Math.max(1, positive(values['llm-tokens-per-second'], 'llm-tokens-per-second')),
    openFiles,
    capacityRule: { metric: 'stt_ms', percentile: 'p99', belowMs: thresholdMs },
    cluster: null,
    log,
  };
  const audio = audioMode(values.audio, 'audio');
  const configs: Array<{ label: string; env: Record<string, string>; audio: 'base64' | 'binary'; cluster?: ClusterSetup }> = [];
  if (values.cluster !== undefined) {
    if (values.a !== undefined || values.b !== undefined) throw new Error('--cluster compares its setups: use --env, not --a/--b');
    for (const setup of parseClusterSetups(values.cluster)) configs.push({ label: setup.label, env: parseEnvSpec(values.env), audio, cluster: setup });
  } else if (values.a !== undefined || values.b !== undefined) {
    configs.push({ label: 'A', env: parseEnvSpec(values.a ?? ''), audio: audioMode(values['audio-a'] ?? audio, 'audio-a') });
    configs.push({ label: 'B', env: parseEnvSpec(values.b ?? ''), audio: audioMode(values['audio-b'] ?? audio, 'audio-b') });
  } else {
    configs.push({ label: 'run', env: parseEnvSpec(values.env), audio });
  }
  const runs: LoadRunResult[] = [];
  const texts: string[] = [];
  for (const config of configs) {
    const options: LoadRunOptions = { ...base, label: config.label, serverEnv: config.env, audio: config.audio, cluster: config.cluster ?? null };
    const run = values['fresh-server-per-step'] ? await runStepsApart(options) : await runLoad(options);
    runs.push(run);
    texts.push(`${config.label === 'run' ? '' : `${config.label}: `}${describe(run)} (${model.description} model${run.settings.freshServerPerStep ? ', fresh server per step' : ''})\n${loadTable(run)}`);
  }
  // Each setup against the first (--cluster 1,2+haproxy: 2 nodes / 1 node), or B / A.
  for (const run of runs.slice(1)) texts.push(ratioTable(runs[0]!, run));
  const jsonPath = `${prefix}.json`;
  const svgPath = `${prefix}.svg`;
  await writeFile(jsonPath, `${JSON.stringify({ machine, loadAverage1mAtEnd: loadAverage1m(), runs }, null, 2)}\n`);
  await writeFile(svgPath, chartOf(runs, thresholdMs));
  texts.push(`JSON: ${jsonPath}\nSVG:  ${svgPath}`);
  return { runs, idle: null, jsonPath, svgPath, text: texts.join('\n\n') };
}
