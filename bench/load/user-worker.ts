// Client process: runs its share of the simulated users (global user i lives in process i % K) and
// reports samples and failures to the coordinator every REPORT_INTERVAL_MS over IPC.
import { AudioPacer, UtteranceCache, WordSource } from './audio.js';
import { METRICS, type Failure, type FromUserWorker, type Sample, type ToUserWorker, type UserWorkerConfig } from './messages.js';
import { epochNow, SimUser, type UserContext } from './sim-user.js';

const REPORT_INTERVAL_MS = 500;
const STOP_GRACE_MS = 5_000;
const WRONG_EXAMPLES_KEPT = 5;

const send = (message: FromUserWorker): void => {
  process.send?.(message);
};

let config: UserWorkerConfig | null = null;
let context: UserContext | null = null;
const stop = new AbortController();
const users: Array<Promise<void>> = [];
const startTimers = new Set<NodeJS.Timeout>();
let samples: Sample[] = [];
let failures: Failure[] = [];
let wrongExamples: string[] = [];
let turns = 0;
let plannedUsers = 0;

function flush(): void {
  if (samples.length === 0 && failures.length === 0 && turns === 0) return;
  send({ type: 'samples', samples, failures, turns, wrongExamples });
  samples = [];
  failures = [];
  wrongExamples = [];
  turns = 0;
}

function makeContext(workerConfig: UserWorkerConfig): UserContext {
  const metricIndex = new Map(METRICS.map((name, index) => [name, index]));
  return {
    wsUrl: workerConfig.wsUrl,
    audio: workerConfig.audio,
    thinkMs: workerConfig.thinkMs,
    timeoutMs: workerConfig.timeoutMs,
    autoSuggest: workerConfig.autoSuggest,
    responseCount: workerConfig.responseCount,
    pacer: new AudioPacer(),
    utterances: new UtteranceCache(new Map(workerConfig.frequenciesHz)),
    stopSignal: stop.signal,
    sample: (metric, startedAt, durationMs) => {
      samples.push([metricIndex.get(metric)!, startedAt, durationMs]);
    },
    failure: (kind) => {
      failures.push([kind, epochNow()]);
    },
    wrongTranscript: (expected, got) => {
      if (wrongExamples.length < WRONG_EXAMPLES_KEPT) wrongExamples.push(`expected "${expected}", got "${got}"`);
    },
    turnCompleted: () => {
      turns++;
    },
  };
}

/** Grows this process's share to `count` users, the new ones starting spread over `staggerMs`. */
function addUsers(count: number, staggerMs: number): void {
  if (config === null || context === null) return;
  const newUsers = count - plannedUsers;
  const vocabulary = config.frequenciesHz.map(([word]) => word);
  for (let i = 0; i < newUsers; i++) {
    const localIndex = plannedUsers + i;
    const globalIndex = config.workerIndex + localIndex * config.workerCount;
    // Processes interleave their starts: process w starts w/K of a slot after process 0.
    const offsetMs = ((i + config.workerIndex / config.workerCount) * staggerMs) / newUsers;
    const words = new WordSource(config.seed + globalIndex * 7919, vocabulary, config.minWords, config.maxWords);
    const userContext = context;
    const timer = setTimeout(() => {
      startTimers.delete(timer);
      if (!stop.signal.aborted) users.push(new SimUser(userContext, words).run());
    }, offsetMs);
    startTimers.add(timer);
  }
  plannedUsers = Math.max(plannedUsers, count);
}

const reporter = setInterval(flush, REPORT_INTERVAL_MS);

process.on('message', (message: ToUserWorker) => {
  switch (message.type) {
    case 'config':
      config = message.config;
      context = makeContext(message.config);
      send({ type: 'ready' });
      break;
    case 'users':
      addUsers(message.count, message.staggerMs);
      break;
    case 'stop':
      void shutdown();
      break;
    default:
      assertNever(message);
  }
});

// The coordinator is gone: nothing to report to.
process.on('disconnect', () => {
  stop.abort();
  process.exit(0);
});

async function shutdown(): Promise<void> {
  stop.abort();
  for (const timer of startTimers) clearTimeout(timer);
  const grace = new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
  await Promise.race([Promise.all(users), grace]);
  clearInterval(reporter);
  flush();
  send({ type: 'stopped' });
  process.disconnect?.();
  setTimeout(() => process.exit(0), 100).unref();
}

function assertNever(value: never): never {
  throw new Error(`unknown message ${JSON.stringify(value)}`);
}
