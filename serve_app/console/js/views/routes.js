// The ML engineer's routes: each endpoint's arms and shadows, setting and ending a route,
// and live plots of every route's stats over a chosen window.

import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { field, h, percent, table, when } from "../dom.js";
import { may } from "../config.js";
import { clearNotice, fail, say } from "../notice.js";
import { confirmChange } from "./confirm.js";

const WINDOWS = [["5 minutes", 300], ["15 minutes", 900], ["1 hour", 3600], ["24 hours", 86400]];
const REFRESH_MS = 2000;
const KEEP_SAMPLES = 180;
const MANAGE = "routes:manage";

function parseArms(text) {
  // "name:version=weight, name:version=weight"
  return text.split(",").map((part) => part.trim()).filter(Boolean).map((part) => {
    const [model, weight = "1"] = part.split("=").map((piece) => piece.trim());
    const number = Number(weight);
    if (!Number.isFinite(number)) throw new Error(`the weight of ${model} is not a number`);
    return { model, weight: number };
  });
}

function list(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean);
}

function routeForm(onSaved) {
  const endpoint = h("input", { id: "route-endpoint", required: true, autocomplete: "off" });
  const arms = h("input", { id: "route-arms", required: true, size: 50, autocomplete: "off", "aria-describedby": "route-arms-hint" });
  const shadows = h("input", { id: "route-shadows", size: 40, autocomplete: "off" });
  const sticky = h("input", { id: "route-sticky", type: "checkbox" });
  return h("form", {
    id: "route-form", class: "panel",
    onsubmit: async (event) => {
      event.preventDefault();
      clearNotice();
      let body;
      try {
        body = { arms: parseArms(arms.value), shadow: list(shadows.value), sticky_key: sticky.checked ? "patient_id" : null };
      } catch (error) {
        fail(error);
        return;
      }
      const summary = `${endpoint.value} will answer from ${body.arms.map((a) => `${a.model} (weight ${a.weight})`).join(", ")}` +
        (body.shadow.length ? `, with shadow copies to ${body.shadow.join(", ")}` : "") + ", within a second.";
      if (!(await confirmChange(`Set the route of ${endpoint.value}?`, summary, "Set route"))) return;
      try {
        await api("PUT", `/routes/${encodeURIComponent(endpoint.value)}`, { json: body });
        say(`Route ${endpoint.value} set.`);
        onSaved();
      } catch (error) {
        fail(error, MANAGE);
      }
    },
  },
  h("h2", {}, "Set a route"),
  field("Endpoint", endpoint, "What clients send as `model`."),
  field("Arms", arms, "name:version=weight, comma-separated, e.g. chest-xray-demo:1.0.0=1, chest-xray-demo:1.1.0=1"),
  field("Shadow copies (optional)", shadows, "name:version, comma-separated: they get a copy of each request; never answer."),
  h("label", { for: "route-sticky" }, sticky, " Keep a patient on one arm (sticky by patient id)"),
  h("p", {}, h("button", { type: "submit" }, "Set route")));
}

function routeTable(routes, onChanged) {
  const rows = routes.map((route) => h("tr", { "data-endpoint": route.endpoint },
    h("td", {}, route.endpoint),
    h("td", {}, route.arms.map((arm) => h("div", {}, `${arm.model} (weight ${arm.weight})`))),
    h("td", {}, route.shadow.length ? route.shadow.map((ref) => h("div", {}, ref)) : "—"),
    h("td", {}, route.sticky_key ?? "—"),
    h("td", {}, `${route.updated_by}, ${when(route.updated_at)}`),
    h("td", {}, onChanged && h("button", {
      type: "button", class: "danger",
      onclick: async () => {
        if (!(await confirmChange(`End the route of ${route.endpoint}?`,
          `${route.endpoint} will answer as before the route, from its model's production version.`, "End route"))) return;
        try {
          await api("DELETE", `/routes/${encodeURIComponent(route.endpoint)}`);
          say(`Route ${route.endpoint} ended.`);
          onChanged();
        } catch (error) {
          fail(error, MANAGE);
        }
      },
    }, "End route"))));
  return rows.length
    ? table(["endpoint", "arms", "shadows", "sticky", "set by", ""], rows)
    : h("p", { class: "hint" }, "No routes: every endpoint answers from its production version.");
}

function statsTable(stats) {
  const row = (kind, arm) => h("tr", { "data-model": arm.model, "data-kind": kind },
    h("td", {}, kind), h("td", {}, arm.model), h("td", { class: "count" }, String(arm.count)),
    h("td", {}, arm.latency_ms.p50.toFixed(1)), h("td", {}, arm.latency_ms.p95.toFixed(1)),
    h("td", {}, arm.latency_ms.p99.toFixed(1)), h("td", {}, percent(arm.positive_rate)),
    h("td", {}, percent(arm.agreement)));
  return table(["", "model", "requests", "p50 ms", "p95 ms", "p99 ms", "positive rate", "agreement"],
    [...stats.arms.map((arm) => row("arm", arm)), ...stats.shadows.map((arm) => row("shadow", arm))]);
}

function charts(endpoint, samples) {
  const models = (key) => [...new Set(samples.flatMap((sample) => sample.stats[key].map((a) => a.model)))];
  const arms = models("arms");
  const shadows = models("shadows");
  const seriesOf = (key, model, pick) => samples.map((sample) => {
    const found = sample.stats[key].find((a) => a.model === model);
    return [sample.t, found ? pick(found) : null];
  });
  const slug = endpoint.replace(/[^A-Za-z0-9_-]/g, "_");
  const figures = [
    lineChart(`chart-${slug}-requests`, `${endpoint}: requests in the window`,
      [...arms.map((m, i) => ({ name: m, colour: i, points: seriesOf("arms", m, (a) => a.count) })),
        ...shadows.map((m, i) => ({ name: `${m} (shadow)`, colour: arms.length + i, dash: 1, points: seriesOf("shadows", m, (a) => a.count) }))],
      { format: (v) => String(Math.round(v)) }),
    lineChart(`chart-${slug}-latency`, `${endpoint}: latency p50 / p95 / p99 (ms)`,
      arms.flatMap((m, i) => ["p50", "p95", "p99"].map((p, d) => ({
        name: `${m} ${p}`, colour: i, dash: d, points: seriesOf("arms", m, (a) => a.count ? a.latency_ms[p] : null),
      }))), { format: (v) => v.toFixed(1) }),
    lineChart(`chart-${slug}-positive`, `${endpoint}: positive rate per arm`,
      arms.map((m, i) => ({ name: m, colour: i, points: seriesOf("arms", m, (a) => a.positive_rate) })),
      { max: 1, format: percent }),
  ];
  if (shadows.length) {
    figures.push(lineChart(`chart-${slug}-agreement`, `${endpoint}: shadow agreement`,
      shadows.map((m, i) => ({ name: m, colour: arms.length + i, points: seriesOf("shadows", m, (a) => a.agreement) })),
      { max: 1, format: percent }));
  }
  return h("div", { class: "charts" }, figures);
}

export function routesView(section, who) {
  const manages = may(who.role, MANAGE);
  let windowS = WINDOWS[0][1];
  let history = new Map(); // endpoint → [{t, stats}]
  let timer = null;
  let stopped = false;
  let routes = [];
  const routesBox = h("div", { id: "routes" });
  const statsBox = h("div", { id: "stats", "aria-live": "off" });
  const updated = h("p", { class: "hint", id: "stats-updated" });

  async function sample() {
    const since = new Date(Date.now() - windowS * 1000).toISOString();
    for (const route of routes) {
      const stats = await api("GET", `/routes/${encodeURIComponent(route.endpoint)}/stats`, { query: { since } });
      const samples = [...(history.get(route.endpoint) ?? []), { t: Date.now(), stats }].slice(-KEEP_SAMPLES);
      history.set(route.endpoint, samples);
    }
    statsBox.replaceChildren(...routes.map((route) => {
      const samples = history.get(route.endpoint) ?? [];
      const latest = samples[samples.length - 1];
      return h("section", { class: "panel", "data-stats": route.endpoint },
        h("h3", {}, route.endpoint),
        latest ? statsTable(latest.stats) : null,
        charts(route.endpoint, samples));
    }));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; every ${REFRESH_MS / 1000} s.`;
  }

  async function tick() {
    try {
      await sample();
    } catch (error) {
      fail(error, MANAGE);
      return; // stop polling on an error; reopening the page starts again
    }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  }

  async function load() {
    try {
      routes = await api("GET", "/routes");
      routesBox.replaceChildren(routeTable(routes, manages ? load : null));
    } catch (error) {
      fail(error, MANAGE);
    }
  }

  const windowSelect = h("select", {
    id: "stats-window",
    onchange: () => { windowS = Number(windowSelect.value); history = new Map(); },
  }, WINDOWS.map(([label, seconds]) => h("option", { value: seconds }, label)));

  section.replaceChildren(...[
    h("h1", { id: "page-title" }, "Routes"),
    routesBox,
    manages && routeForm(load),
    h("h2", {}, "Stats"),
    h("div", { class: "row" }, field("Window", windowSelect)),
    updated,
    statsBox].filter(Boolean));
  load().then(tick);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
