#!/usr/bin/env node
// Runs tap test files N times in a row and reports every failure with its run number, so that a test
// which fails "only sometimes" shows how often, instead of passing once and being trusted.
//
//   npm run test:repeat -- 50 test/stt/worker-slot.test.ts
//   npm run test:repeat -- 50 --load test/stt/worker-slot.test.ts test/stt/vosk-pool.test.ts
//   npm run test:repeat -- 20 --load --grep='learned limit' test/stt/vosk-pool.test.ts
//
// --load starts one busy-loop process per core for the whole run, so the tests run on a machine with
// no idle CPU (what CI and five engineers on two cores look like). The busy loops are killed at the
// end, on Ctrl-C, and on any error; each also exits by itself once this process is gone.
// Other options (--grep=...) go to tap. Without files, tap runs its default set (the whole suite).
// Exit code 0 only if every run passed. Run one tap at a time per checkout: two share .tap/processinfo
// and one fails with ENOTEMPTY (reported here as a run that failed without verdicts).
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const usage = 'usage: npm run test:repeat -- <runs> [--load] [tap options such as --grep=...] [test files...]';

function parseArgs(argv) {
  let runs = null;
  let isLoaded = false;
  const files = [];
  const tapOptions = [];
  for (const arg of argv) {
    if (arg === '--load') isLoaded = true;
    else if (arg === '-h' || arg === '--help') {
      console.log(usage);
      process.exit(0);
    } else if (runs === null && /^\d+$/.test(arg)) runs = Number(arg);
    else if (arg.startsWith('-')) tapOptions.push(arg);
    else files.push(arg);
  }
  if (runs === null || runs < 1) throw new Error(usage);
  return { runs, isLoaded, files, tapOptions };
}

// Each busy loop checks every ~10^8 iterations whether its parent is still this process: if the
// runner is killed hard (SIGKILL, no handler runs) the loops still end within a second or so.
const BUSY_LOOP = `const parent = ${process.pid};
for (;;) {
  for (let i = 0; i < 1e8; i++);
  if (process.ppid !== parent) process.exit(0);
}`;

function startLoad() {
  const loops = [];
  for (let i = 0; i < availableParallelism(); i++) {
    loops.push(spawn(process.execPath, ['-e', BUSY_LOOP], { stdio: 'ignore' }));
  }
  let isStopped = false;
  return {
    count: loops.length,
    stop() {
      if (isStopped) return;
      isStopped = true;
      for (const loop of loops) if (loop.exitCode === null && loop.signalCode === null) loop.kill('SIGKILL');
    },
  };
}

/** The tap run in progress (its own process group), stopped with us on a signal. */
let runningTap = null;

function stopTap() {
  if (runningTap === null || runningTap.exitCode !== null || runningTap.signalCode !== null) return;
  try {
    process.kill(-runningTap.pid, 'SIGTERM');
  } catch (err) {
    // ESRCH: the group ended between the check and the kill; nothing left to stop.
    if (err.code !== 'ESRCH') throw err;
  }
}

/** One tap run: resolves with its exit code, the per-file verdicts and the output of failed tests. */
function runTap(files, tapOptions) {
  return new Promise((resolve, reject) => {
    const tap = spawn(join(root, 'node_modules/.bin/tap'), ['--reporter=tap', ...tapOptions, ...files], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    runningTap = tap;
    let output = '';
    tap.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    tap.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    tap.on('error', reject);
    tap.on('close', (code, signal) => {
      // Top-level points are one per file: "ok 3 - test/stt/x.test.ts # time=812ms".
      const verdicts = new Map();
      for (const match of output.matchAll(/^(not )?ok \d+ - (\S+)/gm)) verdicts.set(match[2], match[1] === undefined);
      resolve({ code: code ?? 1, signal, verdicts, output });
    });
  });
}

/** The lines of a failed run worth printing: every failing point with its YAML diagnostics (capped). */
function failureLines(output) {
  const lines = output.split('\n');
  const picked = [];
  for (let i = 0; i < lines.length && picked.length < 80; i++) {
    if (!/^\s*not ok \d+/.test(lines[i])) continue;
    picked.push(lines[i]);
    // A leaf's diagnostics follow as an indented "---" ... "..." block.
    if (/^\s*---$/.test(lines[i + 1] ?? '')) {
      for (i += 1; i < lines.length && picked.length < 80; i++) {
        picked.push(lines[i]);
        if (/^\s*\.\.\.$/.test(lines[i])) break;
      }
    }
  }
  return picked;
}

const seconds = (ms) => (ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);

async function main() {
  const { runs, isLoaded, files, tapOptions } = parseArgs(process.argv.slice(2));
  const load = isLoaded ? startLoad() : null;
  const stopLoad = () => load?.stop();
  process.on('exit', stopLoad);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      stopTap();
      stopLoad();
      process.exit(130);
    });
  }
  const what = files.length === 0 ? 'the whole suite' : `${files.length} file${files.length === 1 ? '' : 's'}`;
  console.log(`test:repeat: ${runs} runs of ${what}, ${load ? `load on (${load.count} busy processes)` : 'no extra load'}`);
  const passes = new Map();
  const failedRuns = [];
  const started = performance.now();
  try {
    for (let run = 1; run <= runs; run++) {
      const runStarted = performance.now();
      const result = await runTap(files, tapOptions);
      const failedFiles = [];
      for (const [file, isOk] of result.verdicts) {
        const tally = passes.get(file) ?? { passed: 0, runs: 0 };
        tally.runs += 1;
        if (isOk) tally.passed += 1;
        else failedFiles.push(file);
        passes.set(file, tally);
      }
      const isOk = result.code === 0 && failedFiles.length === 0 && result.verdicts.size > 0;
      const took = seconds(performance.now() - runStarted);
      if (isOk) {
        console.log(`run ${run}/${runs}: passed (${result.verdicts.size} file${result.verdicts.size === 1 ? "" : "s"}, ${took})`);
        continue;
      }
      failedRuns.push(run);
      const why = failedFiles.length > 0 ? failedFiles.join(', ') : `tap exited with ${result.signal ?? result.code}`;
      console.log(`run ${run}/${runs}: FAILED ${why} (${took})`);
      for (const line of failureLines(result.output)) console.log(`  | ${line}`);
      if (result.verdicts.size === 0) console.log(result.output.split('\n').slice(-30).map((line) => `  | ${line}`).join('\n'));
    }
  } finally {
    stopLoad();
  }
  for (const [file, tally] of [...passes].sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`${file}: ${tally.passed}/${tally.runs} passed`);
  }
  const total = seconds(performance.now() - started);
  const failedList = failedRuns.length === 0 ? '' : ` (failed runs: ${failedRuns.join(', ')})`;
  console.log(`test:repeat: ${runs - failedRuns.length}/${runs} runs passed, ${failedRuns.length} failed${failedList}, load ${load ? 'on' : 'off'}, ${total}`);
  process.exitCode = failedRuns.length === 0 ? 0 : 1;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 2;
});
