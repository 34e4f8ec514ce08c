// Draws the dashboard's panels as one SVG from Prometheus range queries, laid
// out on the dashboard's own 24-column grid, so that a picture in docs/ shows
// what Grafana would show for the same data. Line charts only (every panel of
// the dashboard is a time series); NaN (a quantile with no observations in
// the window) is a gap, as in Grafana. Pure.
//
//   dashboardSvg({ title, subtitle, start, end, panels: [{ title, unit, gridPos, series: [{ name, points }] }] })

export type ChartSeries = { name: string; /** [unix seconds, value] */ points: [number, number][] };
export type ChartPanel = {
  title: string;
  /** Grafana's unit id: s, reqps, ops, short. */
  unit: string;
  gridPos: { x: number; y: number; w: number; h: number };
  /** Counts: gridlines at whole numbers only (the panel's decimals is 0). */
  integer?: boolean;
  /** A row's heading, drawn across the grid. */
  row?: boolean;
  series: ChartSeries[];
};
export type DashboardPicture = { title: string; subtitle: string; start: number; end: number; panels: ChartPanel[]; width?: number };

/** Grafana's classic palette, in its order. */
const palette = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477"];
const font = "DejaVu Sans, Verdana, sans-serif";
const gridRowPx = 30;
const headerPx = 56;
const marginPx = 12;
const gapPx = 8;
const legendLinePx = 14;
const maxLegendLines = 4;

export function dashboardSvg(picture: DashboardPicture): string {
  const width = picture.width ?? 1400;
  const columnPx = (width - 2 * marginPx) / 24;
  const bottom = Math.max(0, ...picture.panels.map((panel) => panel.gridPos.y + panel.gridPos.h));
  const height = headerPx + bottom * gridRowPx + marginPx;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${font}">`,
    `<rect width="${width}" height="${height}" fill="#f4f5f5"/>`,
    text(marginPx, 24, picture.title, { size: 18, weight: "bold" }),
    text(marginPx, 44, picture.subtitle, { size: 12, fill: "#555" }),
  ];
  for (const panel of picture.panels) {
    const box = {
      x: marginPx + panel.gridPos.x * columnPx,
      y: headerPx + panel.gridPos.y * gridRowPx,
      w: panel.gridPos.w * columnPx - gapPx,
      h: panel.gridPos.h * gridRowPx - gapPx,
    };
    parts.push(panel.row ? text(box.x, box.y + 20, panel.title, { size: 15, weight: "bold" }) : panelSvg(panel, box, picture.start, picture.end));
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

type Box = { x: number; y: number; w: number; h: number };

function panelSvg(panel: ChartPanel, box: Box, start: number, end: number): string {
  const parts = [`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" rx="3" fill="#fff" stroke="#d8d9da"/>`, text(box.x + 8, box.y + 18, panel.title, { size: 13, weight: "bold" })];
  const legend = legendLines(panel.series.map((series, index) => ({ name: series.name, color: colorOf(index) })), box.w - 16);
  const plot = { x: box.x + 58, y: box.y + 28, w: box.w - 70, h: box.h - 28 - 22 - legend.length * legendLinePx - 6 };
  const values = panel.series.flatMap((series) => series.points.map(([, value]) => value)).filter(Number.isFinite);
  const { top, step } = yAxis(Math.max(0, ...values), panel.integer ?? false);
  const xOf = (time: number) => plot.x + ((time - start) / Math.max(1, end - start)) * plot.w;
  const yOf = (value: number) => plot.y + plot.h - (top === 0 ? 0 : (value / top) * plot.h);
  for (let value = 0; value <= top * (1 + 1e-9); value += step) {
    const y = yOf(value);
    parts.push(`<line x1="${plot.x}" y1="${y.toFixed(1)}" x2="${plot.x + plot.w}" y2="${y.toFixed(1)}" stroke="#e6e6e6"/>`);
    parts.push(text(plot.x - 6, y + 4, formatValue(value, panel.unit), { size: 10, fill: "#555", anchor: "end" }));
  }
  timeTicks(start, end, 5).forEach((time, index, all) => {
    const anchor = index === 0 ? "start" : index === all.length - 1 ? "end" : "middle";
    parts.push(text(xOf(time), plot.y + plot.h + 14, clock(time), { size: 10, fill: "#555", anchor }));
  });
  panel.series.forEach((series, index) => {
    for (const run of finiteRuns(series.points)) {
      const path = run.map(([time, value], i) => `${i === 0 ? "M" : "L"}${xOf(time).toFixed(1)},${yOf(value).toFixed(1)}`).join("");
      parts.push(run.length === 1
        ? `<circle cx="${xOf(run[0]![0]).toFixed(1)}" cy="${yOf(run[0]![1]).toFixed(1)}" r="1.5" fill="${colorOf(index)}"/>`
        : `<path d="${path}" fill="none" stroke="${colorOf(index)}" stroke-width="1.5"/>`);
    }
  });
  if (values.length === 0) parts.push(text(plot.x + plot.w / 2, plot.y + plot.h / 2, "No data", { size: 14, fill: "#999", anchor: "middle" }));
  let legendY = plot.y + plot.h + 22 + legendLinePx - 3;
  for (const line of legend) {
    for (const entry of line) {
      parts.push(`<rect x="${(box.x + 8 + entry.offset).toFixed(1)}" y="${legendY - 8}" width="12" height="4" fill="${entry.color}"/>`);
      parts.push(text(box.x + 8 + entry.offset + 16, legendY, entry.name, { size: 11, fill: "#333" }));
    }
    legendY += legendLinePx;
  }
  return parts.join("\n");
}

type LegendEntry = { name: string; color: string; offset: number };

/** Entries wrapped to the panel's width, at most maxLegendLines lines; what does not fit is counted in a last entry. */
function legendLines(entries: { name: string; color: string }[], width: number): LegendEntry[][] {
  const lines: LegendEntry[][] = [[]];
  let offset = 0;
  for (const [index, entry] of entries.entries()) {
    const entryWidth = 16 + approximateTextWidth(entry.name, 11) + 14;
    if (offset > 0 && offset + entryWidth > width) {
      if (lines.length === maxLegendLines) {
        const last = lines[lines.length - 1]!;
        last.push({ name: `+${entries.length - index} more`, color: "transparent", offset });
        break;
      }
      lines.push([]);
      offset = 0;
    }
    lines[lines.length - 1]!.push({ ...entry, offset });
    offset += entryWidth;
  }
  return lines[0]!.length === 0 ? [] : lines;
}

/** Runs of consecutive points with a finite value. */
function finiteRuns(points: [number, number][]): [number, number][][] {
  const runs: [number, number][][] = [];
  let current: [number, number][] = [];
  for (const point of points) {
    if (Number.isFinite(point[1])) current.push(point);
    else if (current.length > 0) {
      runs.push(current);
      current = [];
    }
  }
  if (current.length > 0) runs.push(current);
  return runs;
}

export function formatValue(value: number, unit: string): string {
  if (value === 0) return "0";
  if (unit === "s") {
    if (value < 1) return `${trim(value * 1000)} ms`;
    return `${trim(value)} s`;
  }
  const plain = Math.abs(value) >= 1000 ? `${trim(value / 1000)}k` : trim(value);
  return unit === "reqps" || unit === "ops" ? `${plain}/s` : plain;
}

/** Gridlines at a round step, at most four above zero, the top one at or above the largest value. */
export function yAxis(largest: number, integer = false): { top: number; step: number } {
  const step = integer ? Math.max(1, Math.ceil(niceCeiling(largest / 4))) : niceCeiling(largest / 4);
  return { top: Number((step * Math.max(1, Math.ceil(largest / step - 1e-9))).toPrecision(12)), step };
}

/** The smallest of 1, 2, 2.5, 5 times a power of ten at or above the value; 1 for nothing. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((each) => each * power >= value * (1 - 1e-9)) as number;
  return step * power;
}

function timeTicks(start: number, end: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + ((end - start) * i) / (count - 1));
}

function clock(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(11, 19);
}

function trim(value: number): string {
  return Number(value.toPrecision(3)).toString();
}

function colorOf(index: number): string {
  return palette[index % palette.length] as string;
}

function approximateTextWidth(value: string, size: number): number {
  return value.length * size * 0.6;
}

function text(x: number, y: number, value: string, style: { size: number; weight?: string; fill?: string; anchor?: string }): string {
  const attributes = [`x="${x.toFixed(1)}"`, `y="${y.toFixed(1)}"`, `font-size="${style.size}"`];
  if (style.weight) attributes.push(`font-weight="${style.weight}"`);
  attributes.push(`fill="${style.fill ?? "#222"}"`);
  if (style.anchor) attributes.push(`text-anchor="${style.anchor}"`);
  return `<text ${attributes.join(" ")}>${escapeXml(value)}</text>`;
}

function escapeXml(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
