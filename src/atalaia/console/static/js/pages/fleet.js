// Fleet: every sensor as a cell coloured by its state, grouped by sensor group;
// counts at the top; the sensors needing attention as a table; auto-refresh.
// A token limited to sensor groups sees its sensors, without the fleet's
// reports (GET /reports/fleet, /reports/files: fleet-wide, refused to it).

import { api, limitedTo } from "../api.js";
import { storedReports } from "../reports.js";
import { ago, clear, csvButton, field, h, heading, num, reportButtons, table } from "../ui.js";

const REFRESH_MS = 15_000;
const STALE_ANSWER_S = 30;
const AGAIN_MS = 2_000;
// px per sensor, gap included: large for a plant, dense for a fleet
const cellSize = (total) => (total <= 500 ? 22 : total <= 10_000 ? 14 : 10);
const LISTED = 200; // sensors needing attention listed in the table
export const COLORS = {
  ok: "#2e7d4f", no_model: "#b8bec7", stale: "#6d5cae", drift: "#2f8fbf",
  anomalous: "#e0a100", minor: "#f0c419", major: "#e86a10", critical: "#c62828",
};
export const LABELS = {
  ok: "OK", no_model: "No model", stale: "Stale data", drift: "Drift",
  anomalous: "Anomalous now", minor: "Minor incident", major: "Major incident",
  critical: "Critical incident",
};

export async function render(main, _params, query) {
  const filters = { prefix: query.get("prefix") || "", group: query.get("group") || "",
    state: query.get("state") || "" };
  const counts = h("div", { class: "counts" });
  const grid = h("div", { class: "grid-groups" });
  const attention = h("section", { "aria-labelledby": "attention-title" });
  const stamp = h("span", { class: "muted" });
  const tip = h("div", { class: "grid-tip", role: "tooltip", hidden: true });
  const prefix = h("input", { type: "search", name: "prefix", value: filters.prefix,
    placeholder: "e.g. sensor_0001" });
  const group = h("select", { name: "group" }, h("option", { value: "" }, "All groups"));
  const state = h("select", { name: "state" }, h("option", { value: "" }, "Any state"),
    Object.entries(LABELS).map(([value, label]) =>
      h("option", { value, selected: value === filters.state }, label)));
  const auto = h("input", { type: "checkbox", name: "auto", checked: true });
  const form = h("form", { class: "filters", role: "search" },
    field("Sensor or prefix", prefix), field("Group", group), field("State", state),
    h("label", { class: "check" }, auto, " Refresh every 15 s"),
    h("button", { type: "submit" }, "Apply"));
  let answer = null;
  const cursors = new Map(); // a group's canvas → its selected cell (keyboard)
  const said = h("p", { class: "visually-hidden", "aria-live": "polite" });
  let soon = null; // a reload soon after an answer the server had kept long

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of [["prefix", prefix.value.trim()], ["group", group.value],
      ["state", state.value]]) if (value) next.set(key, value);
    const hash = `#/fleet${next.size ? `?${next}` : ""}`;
    if (location.hash === hash) load();
    else location.hash = hash;
  });

  const fleet = !limitedTo();
  main.append(heading("Fleet", stamp, fleet ? reportButtons("/reports/fleet") : null), counts, form,
    tip, said, grid, attention, ...(fleet ? [storedReports()] : []));

  async function load() {
    answer = await api("/fleet/sensors", {
      query: { prefix: filters.prefix, group: filters.group },
    });
    stamp.textContent = `Figures of ${ago(answer.at)}`;
    clearTimeout(soon);
    if (Date.now() / 1000 - answer.at > STALE_ANSWER_S) { // kept while nobody looked
      soon = setTimeout(() => load().catch(() => {}), AGAIN_MS); // read since: ask again
    }
    showCounts(answer);
    showGroups(answer);
    showAttention(answer);
    requestAnimationFrame(() => performance.mark("atalaia:fleet")); // on screen
  }

  function showCounts(a) {
    clear(counts, h("div", { class: "count total" }, h("strong", {}, num(a.total)), ` ${sensors(a.total)}`),
      a.legend.map((name) => h("a", {
        class: `count count-${name}`, href: `#/fleet?state=${name}`,
        "aria-label": `${a.counts[name]} ${LABELS[name]}`,
      }, h("span", { class: "swatch", style: { background: COLORS[name] } }),
      h("strong", {}, num(a.counts[name])), " ", LABELS[name])));
    const known = new Set([...group.options].map((o) => o.value));
    for (const g of a.groups) {
      if (!known.has(g.name)) {
        group.append(h("option", { value: g.name, selected: g.name === filters.group }, g.name));
      }
    }
  }

  function showGroups(a) {
    const wanted = filters.state ? a.legend.indexOf(filters.state) : -1;
    const canvases = a.groups.map((g) => {
      const canvas = h("canvas", { class: "grid", tabindex: 0, role: "img",
        "aria-label": `${g.count} sensors of group ${g.name}, coloured by state: `
          + "arrow keys move from sensor to sensor, Enter opens one" });
      canvas.addEventListener("keydown", (event) => key(event, canvas, a, g, wanted));
      canvas.addEventListener("focus", () => select(canvas, a, g, wanted, cursors.get(canvas) ?? 0));
      canvas.addEventListener("blur", () => paint(canvas, a, g, wanted));
      canvas.addEventListener("mousemove", (event) => hover(event, canvas, a, g));
      canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
      canvas.addEventListener("click", (event) => {
        const i = cellAt(event, canvas, g);
        if (i !== null) location.hash = `#/sensors/${encodeURIComponent(a.sensors[i])}`;
      });
      return canvas;
    });
    clear(grid, a.groups.map((g, k) => h("section", { class: "grid-group" },
      h("h2", {}, h("a", { href: `#/fleet?group=${encodeURIComponent(g.name)}` }, g.name),
        h("span", { class: "muted" }, ` ${num(g.count)} ${sensors(g.count)}`)), canvases[k])));
    a.groups.forEach((g, k) => paint(canvases[k], a, g, wanted)); // laid out: in the page
  }

  /** The sensors as a table, worst first: every one when they are few (a small
   * fleet, a filter), else the LISTED worst of those needing attention. */
  function showAttention(a) {
    const every = a.total <= LISTED;
    const rows = [];
    for (let i = 0; i < a.sensors.length; i++) {
      const code = a.states.charCodeAt(i) - 48;
      if (every || code > 0) rows.push({ sensor: a.sensors[i], code, state: a.legend[code] });
    }
    rows.sort((x, y) => y.code - x.code || (x.sensor < y.sensor ? -1 : 1));
    const shown = (filters.state ? rows.filter((r) => r.state === filters.state) : rows)
      .slice(0, LISTED);
    clear(attention,
      h("div", { class: "section-head" },
        h("h2", { id: "attention-title" }, every ? "Sensors" : "Sensors needing attention"),
        csvButton("All sensors CSV", "fleet-sensors.csv", ["sensor", "state"],
          () => a.sensors.map((s, i) => [s, a.legend[a.states.charCodeAt(i) - 48]]))),
      table([
        { label: "Sensor", value: (r) => h("a", { href: `#/sensors/${encodeURIComponent(r.sensor)}` }, r.sensor),
          sort: (r) => r.sensor },
        { label: "State", value: (r) => h("span", { class: "state" },
          h("span", { class: "swatch", style: { background: COLORS[r.state] } }), LABELS[r.state]),
        sort: (r) => -r.code },
      ], shown, {
        caption: rows.length > shown.length
          ? `The ${shown.length} worst of ${num(rows.length)}` : undefined,
        label: "Sensors",
        empty: every ? "No sensor matches." : "Every sensor is OK.",
      }));
  }

  function layout(canvas, g) {
    const cell = cellSize(answer.total);
    const box = canvas.parentElement, style = getComputedStyle(box);
    const width = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const columns = Math.max(1, Math.floor(width / cell));
    return { cell, columns, rows: Math.ceil(g.count / columns) };
  }

  /** Arrow keys, Home and End move the selected cell; Enter opens its sensor. */
  function key(event, canvas, a, g, wanted) {
    const at = cursors.get(canvas) ?? 0;
    if (event.key === "Enter") {
      event.preventDefault();
      location.hash = `#/sensors/${encodeURIComponent(a.sensors[g.start + at])}`;
      return;
    }
    const { columns } = layout(canvas, g);
    const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, ArrowDown: at + columns,
      ArrowUp: at - columns, Home: 0, End: g.count - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(canvas, a, g, wanted, Math.min(g.count - 1, Math.max(0, moves[event.key])));
  }

  /** Outline cell `k` of a group's canvas and say which sensor it is. */
  function select(canvas, a, g, wanted, k) {
    cursors.set(canvas, k);
    paint(canvas, a, g, wanted, k);
    const i = g.start + k;
    said.textContent = `${a.sensors[i]}: ${LABELS[a.legend[a.states.charCodeAt(i) - 48]]}`;
  }

  function paint(canvas, a, g, wanted, selected = null) {
    const { cell, columns, rows } = layout(canvas, g);
    const ratio = devicePixelRatio || 1;
    canvas.width = columns * cell * ratio;
    canvas.height = rows * cell * ratio;
    canvas.style.width = `${columns * cell}px`;
    canvas.style.height = `${rows * cell}px`;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const fills = a.legend.map((name) => COLORS[name]);
    for (let k = 0; k < g.count; k++) {
      const code = a.states.charCodeAt(g.start + k) - 48;
      ctx.globalAlpha = wanted < 0 || code === wanted ? 1 : 0.15;
      ctx.fillStyle = fills[code];
      ctx.fillRect((k % columns) * cell, Math.floor(k / columns) * cell, cell - 1, cell - 1);
    }
    if (selected !== null) {
      ctx.globalAlpha = 1;
      ctx.strokeStyle = "#17202a";
      ctx.lineWidth = 2;
      const x = (selected % columns) * cell, y = Math.floor(selected / columns) * cell;
      ctx.strokeRect(x + 1, y + 1, cell - 3, cell - 3);
    }
  }

  function cellAt(event, canvas, g) {
    const { cell, columns } = layout(canvas, g);
    const box = canvas.getBoundingClientRect();
    const column = Math.floor((event.clientX - box.left) / cell);
    const k = Math.floor((event.clientY - box.top) / cell) * columns + column;
    return column < columns && k >= 0 && k < g.count ? g.start + k : null;
  }

  function hover(event, canvas, a, g) {
    const i = cellAt(event, canvas, g);
    if (i === null) {
      tip.hidden = true;
      return;
    }
    tip.textContent = `${a.sensors[i]}: ${LABELS[a.legend[a.states.charCodeAt(i) - 48]]}`;
    tip.style.left = `${event.pageX + 12}px`;
    tip.style.top = `${event.pageY + 12}px`;
    tip.hidden = false;
  }

  await load();
  const timer = setInterval(() => {
    if (auto.checked && !document.hidden) load().catch(() => {});
  }, REFRESH_MS);
  let width = grid.clientWidth;
  const resized = new ResizeObserver(() => { // a new width: as many cells a row as fit
    if (answer && grid.clientWidth !== width) {
      width = grid.clientWidth;
      showGroups(answer);
    }
  });
  resized.observe(grid);
  return () => {
    clearInterval(timer);
    clearTimeout(soon);
    resized.disconnect();
  };
}

/** "sensor" or "sensors", by how many. */
function sensors(count) {
  return count === 1 ? "sensor" : "sensors";
}
