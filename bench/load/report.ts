// Text output of a load run: the per-step table, the side-by-side ratios, the idle-capacity summary.
import type { IdleRunResult } from './idle-run.js';
import type { LoadRunResult } from './load-run.js';
import type { MetricName } from './messages.js';
import type { StepResult } from './stats.js';

const fmt = (value: number | null): string => (value === null ? '-' : value >= 100 ? String(Math.round(value)) : value.toFixed(1));

function triple(step: StepResult, metric: MetricName): string {
  const l = step.latency[metric];
  return `${fmt(l.p50)}/${fmt(l.p95)}/${fmt(l.p99)}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The per-step table (markdown, so it pastes into bench/README.md as is). */
export function loadTable(result: LoadRunResult): string {
  const header = ['users', 'turns', 'errors', 'end->recorded p50/95/99 ms', 'gen->1st delta p50/95/99 ms', 'gen->llm_response p50/95/99 ms',
    'server CPU %core', '%machine', 'RSS max MiB', 'clients+LLM %core', 'load1'];
  const rows = result.steps.map((step) => [
    String(step.users),
    String(step.turns),
    String(step.errorTotal),
    triple(step, 'stt_ms'),
    triple(step, 'first_delta_ms'),
    triple(step, 'llm_response_ms'),
    String(step.serverCpuPercentOfCore),
    String(step.serverCpuPercentOfMachine),
    String(step.serverRssMaxMiB),
    `${step.clientCpuPercentOfCore}+${step.fakeLlmCpuPercentOfCore}`,
    step.loadAverage1m.toFixed(2),
  ]);
  // A --cluster setup: what each node, Redis and HAProxy used (the nodes' sum is "server CPU").
  if (result.setup !== null) {
    header.push('connections per node', 'per node %core', 'redis %core', 'haproxy %core');
    result.steps.forEach((step, i) => rows[i]!.push(step.connectionsByNode.map((n) => n ?? '?').join('+'), step.serverCpuPercentOfCoreByNode.join('+'),
      step.redisCpuPercentOfCore === null ? '-' : String(step.redisCpuPercentOfCore),
      step.proxyCpuPercentOfCore === null ? '-' : String(step.proxyCpuPercentOfCore)));
  }
  const lines = [table(header, rows)];
  for (const step of result.steps) {
    if (step.errorTotal > 0) {
      lines.push(`  ${step.users} users: ${Object.entries(step.errors).map(([kind, n]) => `${kind} x${n}`).join(', ')}`);
      for (const example of step.wrongTranscriptExamples) lines.push(`    wrong transcript: ${example}`);
    }
  }
  const cap = result.capacity;
  lines.push(`capacity (${cap.rule}): ${cap.users ?? 'none'} users` +
    (cap.firstFailing ? `; first failing step ${cap.firstFailing.users} users: ${cap.firstFailing.reason}` : '; every step passed'));
  if (result.proxyEvents.length > 0) lines.push(`haproxy: ${result.proxyEvents.length} node state changes:`, ...result.proxyEvents.map((event) => `  ${event}`));
  if (result.aborted) lines.push(`ABORTED: ${result.aborted}`);
  return lines.join('\n');
}

const ratio = (b: number | null, a: number | null): string => (a === null || b === null || a === 0 ? '-' : `${(b / a).toFixed(2)}x`);

/** B / A per step, for the same number of users (A and B named by their labels: A/B, or the --cluster setups). */
export function ratioTable(a: LoadRunResult, b: LoadRunResult): string {
  const header = ['users', `errors ${a.label} | ${b.label}`, 'turns', 'recorded p50', 'p95', 'p99', '1st delta p50', 'p99', 'llm_response p50', 'p99', 'server CPU', 'RSS max'];
  const rows: string[][] = [];
  for (const stepA of a.steps) {
    const stepB = b.steps.find((s) => s.users === stepA.users);
    if (!stepB) continue;
    rows.push([
      String(stepA.users),
      `${stepA.errorTotal} | ${stepB.errorTotal}`,
      ratio(stepB.turns, stepA.turns),
      ratio(stepB.latency.stt_ms.p50, stepA.latency.stt_ms.p50),
      ratio(stepB.latency.stt_ms.p95, stepA.latency.stt_ms.p95),
      ratio(stepB.latency.stt_ms.p99, stepA.latency.stt_ms.p99),
      ratio(stepB.latency.first_delta_ms.p50, stepA.latency.first_delta_ms.p50),
      ratio(stepB.latency.first_delta_ms.p99, stepA.latency.first_delta_ms.p99),
      ratio(stepB.latency.llm_response_ms.p50, stepA.latency.llm_response_ms.p50),
      ratio(stepB.latency.llm_response_ms.p99, stepA.latency.llm_response_ms.p99),
      ratio(stepB.serverCpuPercentOfCore, stepA.serverCpuPercentOfCore),
      ratio(stepB.serverRssMaxMiB, stepA.serverRssMaxMiB),
    ]);
  }
  return [`${b.label} / ${a.label} (${a.label} = ${describe(a)}; ${b.label} = ${describe(b)})`, table(header, rows),
    `capacity: ${a.label} ${a.capacity.users ?? 'none'} users, ${b.label} ${b.capacity.users ?? 'none'} users`].join('\n');
}

export function describe(result: LoadRunResult): string {
  const env = Object.entries(result.serverEnv).map(([k, v]) => `${k}=${v}`).join(' ');
  return `${result.setup === null ? '' : `${result.setup}, `}${env === '' ? 'defaults' : env}, audio ${result.audio}`;
}

export function idleSummary(result: IdleRunResult): string {
  const header = ['connections', 'server RSS MiB', 'KiB per connection (from idle)'];
  const rows = result.curve.map((point) => [String(point.connections), String(point.rssMiB), point.connections === 0 ? '-' : point.kibPerConnection.toFixed(1)]);
  return [
    table(header, rows),
    `idle: ${result.connectionsHeld} connections with a session held (target ${result.target})` +
      `${result.stoppedBecause ? `; stopped: ${result.stoppedBecause}` : ''}`,
    `after ${result.holdSeconds} s quiet: ${result.stillOpen} still open, ${result.closedByServer} closed by the server; ` +
      `server CPU while quiet ${result.quietCpuPercentOfCore}% of a core`,
    `server RSS ${result.rssIdleMiB} MiB idle -> ${result.rssHeldMiB} MiB: ${result.kibPerConnection.toFixed(1)} KiB per connection`,
  ].join('\n');
}
