// A hand-written SVG line chart (no dependencies): latency percentiles against the number of users,
// one panel per latency, a line per percentile (and per configuration when comparing two).
export interface Series {
  label: string;
  color: string;
  /** false: solid; true: dashed; a string: that SVG stroke-dasharray (e.g. '2,3', dotted). */
  dashed: boolean | string;
  points: Array<[number, number | null]>;
}

export interface Panel {
  title: string;
  series: Series[];
  /** A horizontal limit line (e.g. the 300 ms capacity rule). */
  thresholdMs?: number;
  /** Short red notes at the top of the plot above an x value (e.g. the step's error count). */
  notes?: Array<[number, string]>;
  /** Axis labels (default: simulated users (N), latency (ms)). */
  xLabel?: string;
  yLabel?: string;
}

const PANEL_WIDTH = 460;
const PANEL_HEIGHT = 320;
const MIN_LABEL_GAP_PX = 22;
const MIN_NOTE_GAP_PX = 56;
const MARGIN = { left: 64, right: 16, top: 40, bottom: 96 };

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 1, 2, 5 x 10^k steps giving about `count` ticks from 0 to at least `max`. */
export function niceTicks(max: number, count = 5): number[] {
  const target = max <= 0 ? 1 : max;
  const raw = target / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = 0; v <= target + step * 0.999; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  return ticks;
}

function renderPanel(panel: Panel, offsetX: number, xValues: number[]): string {
  const plotW = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const ys = panel.series.flatMap((s) => s.points.map(([, y]) => y).filter((y): y is number => y !== null));
  const yTicks = niceTicks(Math.max(...ys, panel.thresholdMs ?? 0, 1));
  const yMax = yTicks[yTicks.length - 1]!;
  const xMin = Math.min(...xValues);
  const xMax = Math.max(...xValues);
  const xTicks = xValues;
  const px = (x: number): number => offsetX + MARGIN.left + (xMax === xMin ? plotW / 2 : ((x - xMin) / (xMax - xMin)) * plotW);
  const py = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH;
  const out: string[] = [];
  out.push(`<g class="panel">`);
  out.push(`<text class="panel-title" x="${offsetX + MARGIN.left + plotW / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${escape(panel.title)}</text>`);
  for (const tick of yTicks) {
    out.push(`<line class="grid" x1="${offsetX + MARGIN.left}" x2="${offsetX + MARGIN.left + plotW}" y1="${py(tick)}" y2="${py(tick)}" stroke="#ddd"/>`);
    out.push(`<text class="y-tick" x="${offsetX + MARGIN.left - 6}" y="${py(tick) + 4}" text-anchor="end" font-size="11">${tick}</text>`);
  }
  // Every step gets a tick mark; a label only where it does not run into the previous one.
  let lastLabelX = Number.NEGATIVE_INFINITY;
  for (const tick of xTicks) {
    out.push(`<line class="x-tick-mark" x1="${px(tick)}" x2="${px(tick)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#333"/>`);
    if (px(tick) - lastLabelX < MIN_LABEL_GAP_PX) continue;
    lastLabelX = px(tick);
    out.push(`<text class="x-tick" x="${px(tick)}" y="${MARGIN.top + plotH + 17}" text-anchor="middle" font-size="11">${tick}</text>`);
  }
  out.push(`<line class="axis" x1="${offsetX + MARGIN.left}" x2="${offsetX + MARGIN.left + plotW}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}" stroke="#333"/>`);
  out.push(`<line class="axis" x1="${offsetX + MARGIN.left}" x2="${offsetX + MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#333"/>`);
  out.push(`<text class="x-label" x="${offsetX + MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + 36}" text-anchor="middle" font-size="12">${escape(panel.xLabel ?? 'simulated users (N)')}</text>`);
  out.push(`<text class="y-label" transform="translate(${offsetX + 16},${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escape(panel.yLabel ?? 'latency (ms)')}</text>`);
  if (panel.thresholdMs !== undefined) {
    out.push(`<line class="threshold" x1="${offsetX + MARGIN.left}" x2="${offsetX + MARGIN.left + plotW}" y1="${py(panel.thresholdMs)}" y2="${py(panel.thresholdMs)}" stroke="#c00" stroke-dasharray="2,3"/>`);
    out.push(`<text x="${offsetX + MARGIN.left + plotW - 4}" y="${py(panel.thresholdMs) - 4}" text-anchor="end" font-size="10" fill="#c00">${panel.thresholdMs} ms</text>`);
  }
  // Two rows: a note goes in the first row with room after its previous note, or is left out.
  const lastNoteX = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const [x, note] of panel.notes ?? []) {
    const row = lastNoteX.findIndex((last) => px(x) - last >= MIN_NOTE_GAP_PX);
    if (row < 0) continue;
    lastNoteX[row] = px(x);
    out.push(`<text class="note" x="${px(x)}" y="${MARGIN.top + 10 + row * 12}" text-anchor="middle" font-size="10" fill="#c00">${escape(note)}</text>`);
  }
  panel.series.forEach((series, index) => {
    const points = series.points.filter((p): p is [number, number] => p[1] !== null);
    const dash = series.dashed === false ? '' : ` stroke-dasharray="${series.dashed === true ? '6,4' : series.dashed}"`;
    if (points.length > 0) {
      out.push(`<polyline class="series" data-label="${escape(series.label)}" fill="none" stroke="${series.color}" stroke-width="2"${dash} points="${points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
      for (const [x, y] of points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.5" fill="${series.color}"/>`);
    }
    // Legend below the axis label, two columns.
    const lx = offsetX + MARGIN.left + (index % 2) * (plotW / 2);
    const ly = MARGIN.top + plotH + 54 + Math.floor(index / 2) * 16;
    out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${series.color}" stroke-width="2"${dash}/>`);
    out.push(`<text class="legend" x="${lx + 28}" y="${ly}" font-size="11">${escape(series.label)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

export function renderChart(title: string, subtitle: string, panels: Panel[]): string {
  const xValues = [...new Set(panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([x]) => x))))].sort((a, b) => a - b);
  const width = PANEL_WIDTH * panels.length;
  // The legend has two columns; rows past the two the bottom margin holds make the chart taller.
  const legendRows = Math.max(...panels.map((p) => Math.ceil(p.series.length / 2)));
  const height = PANEL_HEIGHT + 44 + Math.max(0, legendRows - 2) * 16;
  const body = panels.map((panel, i) => `<g transform="translate(0,44)">${renderPanel(panel, i * PANEL_WIDTH, xValues.length > 0 ? xValues : [0])}</g>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text class="title" x="${width / 2}" y="20" text-anchor="middle" font-size="16" font-weight="bold">${escape(title)}</text>`,
    `<text class="subtitle" x="${width / 2}" y="38" text-anchor="middle" font-size="11" fill="#555">${escape(subtitle)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
