// checkModel: is this directory a Vosk model that the real libvosk loads and decodes? Obvious layout
// problems are found here with friendly messages; the load and a test decode then run in a child
// process (check-child), because libvosk aborts or segfaults on some broken models instead of
// returning an error (vosk-test-model.md §6).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CheckReportSchema, type CheckRequest } from './check-messages.js';

export interface CheckModelOptions {
  /** Kill the check process after this long (default 30 s; a big real model loads in seconds). */
  timeoutMs?: number;
  /** Tone models: the words to say (default: the whole vocabulary in tones.json). */
  words?: readonly string[];
  /** Decode through a grammar recogniser (lookahead models) with these phrases. */
  grammar?: readonly string[];
  /** Tone models: the text the decode must give (default: the words joined by spaces). */
  expectedText?: string;
  signal?: AbortSignal;
}

export type ModelCheckResult =
  | {
      ok: true;
      dir: string;
      loadMs: number;
      recognizerMs: number;
      decodeMs: number;
      audioSeconds: number;
      text: string;
      /** True when tones.json was present and the decoded text was checked word for word. */
      hasToneTable: boolean;
    }
  | { ok: false; dir: string; reason: string };

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_SAMPLE_RATE_HZ = 16000;
/** How many of the child's last stderr lines go into a failure reason. */
const STDERR_TAIL_LINES = 4;
/** libvosk (Kaldi, OpenFst) problem lines; its INFO lines and option help are noise in a reason. */
const IMPORTANT_LOG_LINE = /^(ERROR|ASSERTION_FAILED|FATAL|WARNING)\b/;

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

/** The layout rules of vosk-test-model.md §3, as libvosk 0.3.39 applies them; null when fine. */
function layoutProblem(dir: string): string | null {
  if (!existsSync(dir)) return `model directory ${dir} does not exist`;
  if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
  const has = (name: string): boolean => isFile(join(dir, name));
  if (!has('am/final.mdl')) {
    if (has('final.mdl') && has('mfcc.conf')) return null; // the old flat (v1) layout, which libvosk still reads
    return `${dir} has no am/final.mdl: not a Vosk model directory (a zip's top folder, perhaps one level down?)`;
  }
  if (!has('conf/model.conf')) return `${dir} has am/final.mdl but no conf/model.conf`;
  if (!has('conf/mfcc.conf') && !has('conf/fbank.conf')) return `${dir} has neither conf/mfcc.conf nor conf/fbank.conf`;
  const hasHclg = has('graph/HCLG.fst');
  if (!hasHclg && !(has('graph/HCLr.fst') && has('graph/Gr.fst'))) {
    return `${dir} has no decoding graph: graph/HCLG.fst, or graph/HCLr.fst with graph/Gr.fst`;
  }
  if (!has('graph/words.txt')) return `${dir} has no graph/words.txt`;
  // Without it libvosk decodes, then aborts or segfaults while aligning words.
  if (!has('graph/phones/word_boundary.int')) return `${dir} has no graph/phones/word_boundary.int`;
  return null;
}

/** The sample rate a model expects (Hz): `--sample-frequency` of its feature config, else 16000 (Kaldi's default). */
export function sampleRateHz(dir: string): number {
  for (const name of ['conf/mfcc.conf', 'conf/fbank.conf', 'mfcc.conf']) {
    const path = join(dir, name);
    if (!isFile(path)) continue;
    const match = /^--sample-frequency=(\d+)/m.exec(readFileSync(path, 'utf8'));
    return match?.[1] === undefined ? DEFAULT_SAMPLE_RATE_HZ : Number(match[1]);
  }
  return DEFAULT_SAMPLE_RATE_HZ;
}

/** The child module next to this one, with this module's extension: .ts under tsx, .js once compiled. */
function childModulePath(): string {
  const self = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`./check-child${extname(self)}`, import.meta.url));
}

/** Node flags that decide how modules load, each possibly followed by its value as the next argument. */
const MODULE_LOADING_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '--conditions', '-C']);

/**
 * The parent's module-loading flags (tsx's --import when running from TypeScript), and nothing else:
 * passing all of execArgv would hand `node -e CODE` its code again, and the child would run it.
 */
function moduleLoadingExecArgv(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] ?? '';
    const flag = arg.split('=')[0] ?? '';
    if (!MODULE_LOADING_FLAGS.has(flag)) continue;
    kept.push(arg);
    if (!arg.includes('=') && i + 1 < execArgv.length) kept.push(execArgv[++i] ?? '');
  }
  return kept;
}

function stderrSummary(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const important = lines.filter((line) => IMPORTANT_LOG_LINE.test(line));
  const tail = (important.length > 0 ? important : lines).slice(-STDERR_TAIL_LINES);
  return tail.length > 0 ? `: ${tail.join(' | ')}` : '';
}

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  isTimedOut: boolean;
}

async function runChild(
  request: CheckRequest,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ChildOutcome> {
  // libvosk's stderr goes to a file, not a pipe: Node makes the pipe non-blocking, and once it is full
  // (Kaldi prints its whole option help before an error) C++'s std::cerr fails and drops the very
  // lines that say what is wrong.
  const logDir = await mkdtemp(join(tmpdir(), 'voxgate-model-check-'));
  const logPath = join(logDir, 'stderr.log');
  const logFile = await open(logPath, 'w');
  try {
    const exit = await new Promise<Omit<ChildOutcome, 'stderr'>>((resolvePromise, reject) => {
      const args = [...moduleLoadingExecArgv(process.execArgv), childModulePath(), JSON.stringify(request)];
      const child = spawn(process.execPath, args, {
        stdio: ['ignore', 'pipe', logFile.fd],
        ...(signal === undefined ? {} : { signal }),
      });
      let stdout = '';
      let isTimedOut = false;
      child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      const timer = setTimeout(() => {
        isTimedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, exitSignal) => {
        clearTimeout(timer);
        resolvePromise({ code, signal: exitSignal, stdout, isTimedOut });
      });
    });
    return { ...exit, stderr: await readFile(logPath, 'utf8') };
  } finally {
    await logFile.close();
    await rm(logDir, { recursive: true, force: true });
  }
}

/**
 * Checks that `modelDir` holds a model libvosk loads and decodes. Resolves to `{ ok: false, reason }`
 * for every problem with the model (never rejects for those); rejects only if the check process
 * itself cannot be started or `signal` aborts it.
 */
export async function checkModel(modelDir: string, options: CheckModelOptions = {}): Promise<ModelCheckResult> {
  const dir = resolve(modelDir);
  const problem = layoutProblem(dir);
  if (problem !== null) return { ok: false, dir, reason: problem };

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const request: CheckRequest = {
    modelDir: dir,
    sampleRateHz: sampleRateHz(dir),
    words: options.words === undefined ? null : [...options.words],
    grammar: options.grammar === undefined ? null : [...options.grammar],
    expectedText: options.expectedText ?? null,
  };
  const outcome = await runChild(request, timeoutMs, options.signal);
  if (outcome.isTimedOut) {
    return { ok: false, dir, reason: `the check did not finish within ${timeoutMs} ms${stderrSummary(outcome.stderr)}` };
  }
  if (outcome.signal !== null) {
    return {
      ok: false,
      dir,
      reason: `libvosk crashed the check process with ${outcome.signal}${stderrSummary(outcome.stderr)}`,
    };
  }
  const lastLine = outcome.stdout.trim().split('\n').pop() ?? '';
  const parsed = lastLine === '' ? null : CheckReportSchema.safeParse(JSON.parse(lastLine));
  if (outcome.code !== 0 || parsed === null || !parsed.success) {
    return {
      ok: false,
      dir,
      reason: `the check process exited with code ${outcome.code} without a report${stderrSummary(outcome.stderr)}`,
    };
  }
  const report = parsed.data;
  if (!report.ok) {
    const detail = report.stage === 'text' ? '' : stderrSummary(outcome.stderr);
    return { ok: false, dir, reason: `${report.reason}${detail}` };
  }
  const { ok, ...figures } = report;
  return { ok, dir, ...figures };
}
