// Small hand-written SVG line charts: no library to vendor, nothing to load from elsewhere.
// Colours are SVG attributes, not inline styles, which the Content-Security-Policy forbids.

import { h, s } from "./dom.js";

const WIDTH = 480;
const HEIGHT = 200;
const PAD = { left: 52, right: 12, top: 12, bottom: 26 };
const COLOURS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#6b21a8"];
const DASHES = [null, "6 3", "2 3"];

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * step).find((top) => top >= value);
}

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

/**
 * series: [{name, colour index, dash index, points: [[epoch ms, value|null], ...]}]
 * A value of null leaves a gap (e.g. no positive rate yet).
 */
export function lineChart(id, title, series, { max, format = (v) => String(v) } = {}) {
  const points = series.flatMap((line) => line.points.filter(([, v]) => v !== null && v !== undefined));
  const times = points.map(([t]) => t);
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const top = max ?? niceMax(Math.max(0, ...points.map(([, v]) => v)));
  const x = (t) => PAD.left + (t1 > t0 ? ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right) : (WIDTH - PAD.left - PAD.right) / 2);
  const y = (v) => HEIGHT - PAD.bottom - (v / top) * (HEIGHT - PAD.top - PAD.bottom);
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title },
    s("title", {}, title));
  for (const fraction of [0, 0.5, 1]) {
    const v = top * fraction;
    svg.append(
      s("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v), stroke: "#d1d5db" }),
      s("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#374151" }, format(v)));
  }
  if (points.length) {
    svg.append(
      s("text", { x: PAD.left, y: HEIGHT - 6, "font-size": 11, fill: "#374151" }, clock(t0)),
      s("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, "font-size": 11, fill: "#374151", "text-anchor": "end" }, clock(t1)));
  }
  const legend = h("ul", { class: "legend" });
  series.forEach((line, i) => {
    const colour = COLOURS[(line.colour ?? i) % COLOURS.length];
    const dash = DASHES[(line.dash ?? 0) % DASHES.length];
    const shown = line.points.filter(([, v]) => v !== null && v !== undefined);
    if (shown.length > 1) {
      svg.append(s("polyline", {
        points: shown.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": 2, "stroke-dasharray": dash, "data-series": line.name,
      }));
    }
    for (const [t, v] of shown.slice(-1)) {
      svg.append(s("circle", { cx: x(t), cy: y(v), r: 3, fill: colour }));
    }
    const latest = shown.length ? format(shown[shown.length - 1][1]) : "—";
    legend.append(h("li", { "data-series": line.name, "data-points": shown.length },
      s("svg", { width: 22, height: 10, "aria-hidden": "true" },
        s("line", { x1: 0, x2: 22, y1: 5, y2: 5, stroke: colour, "stroke-width": 3, "stroke-dasharray": dash })),
      `${line.name}: ${latest}`));
  });
  return h("figure", { id, "data-samples": Math.max(0, ...series.map((l) => l.points.length)) },
    h("figcaption", {}, title), svg, legend);
}
