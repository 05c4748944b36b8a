// `npx tsx bench/load/run.ts [options]`: the load test of issue 7 (see bench/README.md, "Load test").
import { runBenchmark } from './benchmark.js';

try {
  const output = await runBenchmark(process.argv.slice(2));
  process.stdout.write(`${output.text}\n`);
  const failed = output.runs.some((run) => run.aborted !== null);
  process.exitCode = failed ? 1 : 0;
} catch (err) {
  process.stderr.write(`load test failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
}
