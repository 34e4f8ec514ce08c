// The latency chart: cumulative distributions of ours (EndpointSlices and
// Endpoints), Kubernetes' own and the floor, on a logarithmic millisecond
// axis, as a self-contained SVG. A curve further left is faster; where a
// curve crosses 50 % and 99 % are the medians and p99s of the table.
//
//   latencyChartSvg({ title, series: [{ label, color, samples }] }): string

export type ChartSeries = { label: string; color: string; samples: readonly number[] };

const width = 760;
const height = 440;
const margin = { left: 64, right: 24, top: 48, bottom: 96 };

export function latencyChartSvg(chart: { title: string; subtitle?: string; series: ChartSeries[] }): string {
  const plotted = chart.series.filter((series) => series.samples.length > 0);
  const all = plotted.flatMap((series) => series.samples);
  const lo = Math.max(0.5, Math.min(1, ...all.map((ms) => Math.max(ms, 0.5))));
  const hi = Math.max(10, ...all);
  const decades = decadeTicks(lo, hi);
  const xMin = decades[0] ?? 1;
  const xMax = decades[decades.length - 1] ?? 10;
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const x = (ms: number) => margin.left + ((Math.log10(Math.max(ms, xMin)) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * plotWidth;
  const y = (fraction: number) => margin.top + (1 - fraction) * plotHeight;

  const parts: string[] = [];
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${escape(chart.title)}</text>`);
  if (chart.subtitle) parts.push(`<text x="${width / 2}" y="40" text-anchor="middle" font-size="12" fill="#555">${escape(chart.subtitle)}</text>`);
  for (const fraction of [0, 0.25, 0.5, 0.75, 0.9, 0.99]) {
    const strong = fraction === 0.5 || fraction === 0.99;
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${f(y(fraction))}" y2="${f(y(fraction))}" stroke="${strong ? "#bbb" : "#eee"}"${strong ? ' stroke-dasharray="4 3"' : ""}/>`,
      `<text x="${margin.left - 6}" y="${f(y(fraction) + 4)}" text-anchor="end" font-size="11">${Math.round(fraction * 100)} %</text>`,
    );
  }
  for (const tick of decades) {
    for (const minor of [2, 3, 5]) {
      const at = tick * minor;
      if (at < xMax) parts.push(`<line x1="${f(x(at))}" x2="${f(x(at))}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#f3f3f3"/>`);
    }
    parts.push(
      `<line x1="${f(x(tick))}" x2="${f(x(tick))}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#e0e0e0"/>`,
      `<text x="${f(x(tick))}" y="${margin.top + plotHeight + 16}" text-anchor="middle" font-size="11">${formatMs(tick)}</text>`,
    );
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888"/>`,
    `<text x="${margin.left + plotWidth / 2}" y="${margin.top + plotHeight + 34}" text-anchor="middle" font-size="12">latency from the write to the watch event (ms, log scale)</text>`,
    `<text x="16" y="${margin.top + plotHeight / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${margin.top + plotHeight / 2})">events seen within</text>`,
  );
  for (const series of plotted) {
    const sorted = [...series.samples].sort((a, b) => a - b);
    const points: string[] = [`${f(x(sorted[0] ?? xMin))},${f(y(0))}`];
    sorted.forEach((ms, i) => {
      points.push(`${f(x(ms))},${f(y(i / sorted.length))}`, `${f(x(ms))},${f(y((i + 1) / sorted.length))}`);
    });
    parts.push(`<polyline fill="none" stroke="${series.color}" stroke-width="2" points="${points.join(" ")}"/>`);
  }
  chart.series.forEach((series, i) => {
    const column = i % 2;
    const row = Math.floor(i / 2);
    const lx = margin.left + column * (plotWidth / 2);
    const ly = height - 40 + row * 18;
    const note = series.samples.length === 0 ? " (no samples)" : ` (n=${series.samples.length})`;
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${series.color}" stroke-width="3"/>`,
      `<text x="${lx + 30}" y="${ly}" font-size="12">${escape(series.label + note)}</text>`,
    );
  });
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
${parts.join("\n")}
</svg>
`;
}

/** Powers of ten from below lo to at or above hi. */
function decadeTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let exp = Math.floor(Math.log10(lo)); ; exp++) {
    ticks.push(10 ** exp);
    if (10 ** exp >= hi) break;
  }
  return ticks;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms}`;
}

function f(value: number): string {
  return value.toFixed(1);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
