// Small DOM helpers shared by the pages: elements, tables, CSV, toasts, formats.

import { apiFile } from "./api.js";

/** An element: h("a", {href: "#/x", class: "y"}, "text", child…). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "style") {
      Object.assign(el.style, value); // CSSOM: the page's policy forbids style=""
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? "" : value);
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element: svg("circle", {cx: 1, cy: 2, r: 3}, child…). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  return el;
}

const DATE = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

/** Epoch seconds of a number of them or of an ISO 8601 date. */
export function epoch(at) {
  return typeof at === "number" ? at : Date.parse(at) / 1000;
}

/** A time (epoch seconds or ISO 8601) as a local date and time. */
export function when(at) {
  if (at === null || at === undefined) return "—";
  return DATE.format(new Date(epoch(at) * 1000));
}

/** A duration in seconds as "3 h 5 min". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** How long ago a time (epoch seconds or ISO 8601) was. */
export function ago(at) {
  return at ? `${duration(Date.now() / 1000 - epoch(at))} ago` : "—";
}

/** A job's id in a table: its random tail (the head is its creation time). */
export function shortId(id) {
  return `…${id.slice(-8)}`;
}

export function num(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString();
  return Number(value.toPrecision(digits)).toLocaleString();
}

export function pct(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(2)} %`;
}

/** A severity or state as a coloured badge (the word is always written). */
export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

/** A progress bar with its label. */
export function progress(parts, total, label) {
  const bar = h("div", {
    class: "progress", role: "progressbar", "aria-label": label,
    "aria-valuemin": 0, "aria-valuemax": total,
    "aria-valuenow": parts.reduce((sum, p) => sum + (p.done ? p.value : 0), 0),
  });
  for (const part of parts) {
    if (part.value > 0 && total > 0) {
      bar.append(h("span", {
        class: `progress-${part.kind}`,
        style: { width: `${(100 * part.value) / total}%` },
        title: `${part.kind}: ${part.value.toLocaleString()}`,
      }));
    }
  }
  return bar;
}

/**
 * A table: columns are {label, value: row → text|Node, sort?: row → key, num?}.
 * Headers of sortable columns are buttons that sort the rows in the page.
 */
export function table(columns, rows, { caption, label = "Table", empty = "Nothing here." } = {}) {
  const body = h("tbody");
  let order = { index: -1, dir: 1 };
  const fill = () => {
    let shown = rows;
    if (order.index >= 0) {
      const key = columns[order.index].sort;
      shown = [...rows].sort((a, b) => {
        const x = key(a), y = key(b);
        return (x < y ? -1 : x > y ? 1 : 0) * order.dir;
      });
    }
    clear(body, shown.length ? shown.map((row) => h("tr", {},
      columns.map((c) => h("td", { class: c.num ? "num" : null }, c.value(row))))) :
      h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty)));
  };
  const head = h("tr", {}, columns.map((c, index) => {
    if (!c.sort) return h("th", { scope: "col", class: c.num ? "num" : null }, c.label);
    const th = h("th", { scope: "col", "aria-sort": "none", class: c.num ? "num" : null });
    th.append(h("button", {
      type: "button", class: "sort",
      onclick: () => {
        order = { index, dir: order.index === index ? -order.dir : 1 };
        for (const other of head.children) other.setAttribute("aria-sort", "none");
        th.setAttribute("aria-sort", order.dir > 0 ? "ascending" : "descending");
        fill();
      },
    }, c.label));
    return th;
  }));
  fill();
  // A region that scrolls sideways on a narrow screen: reachable by keyboard.
  return h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption || label },
    h("table", {}, caption ? h("caption", {}, caption) : null, h("thead", {}, head), body));
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Save rows as a CSV file named `filename`. */
export function saveCsv(filename, header, rows) {
  const lines = [header, ...rows].map((row) => row.map(csvCell).join(","));
  saveBlob(filename, new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }));
}

/** Save `blob` as a file named `filename`. */
export function saveBlob(filename, blob) {
  const link = h("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/** A button that saves what `rows()` gives as CSV. */
export function csvButton(label, filename, header, rows) {
  return h("button", {
    type: "button", class: "secondary",
    onclick: () => saveCsv(filename, header, rows()),
  }, label);
}

const DAY_MS = 86_400_000;
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

/** `button`, saving the file `fetchFile()` answers (a promise of {blob,
 * filename}, or null: nothing to fetch) when clicked; disabled meanwhile. */
function savesFile(button, fetchFile) {
  button.addEventListener("click", async () => {
    const asked = fetchFile();
    if (!asked) return;
    button.disabled = true;
    try {
      const { blob, filename } = await asked;
      saveBlob(filename, blob);
    } catch (error) {
      toast(error.message || String(error), "error");
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A period picker (From and To, UTC days, To included; default the last 7
 * days) and buttons that save the report of `path` (/reports/…) over it as
 * PDF or Excel, made by the server. */
export function reportButtons(path, query = {}) {
  const today = Date.now();
  const from = h("input", { type: "date", name: "report-from",
    value: isoDay(today - 6 * DAY_MS), max: isoDay(today) });
  const to = h("input", { type: "date", name: "report-to", value: isoDay(today),
    max: isoDay(today) });
  const report = (format) => () => {
    if (!from.value || !to.value) {
      toast("Choose the report's first and last day", "error");
      return null;
    }
    const end = isoDay(Date.parse(`${to.value}T00:00:00Z`) + DAY_MS);
    return apiFile(path, { ...query, start: `${from.value}T00:00:00Z`,
      end: `${end}T00:00:00Z`, format });
  };
  const button = (label) => h("button", { type: "button", class: "secondary" }, label);
  return h("span", { class: "report-buttons", role: "group", "aria-label": "Report of a period" },
    h("label", {}, "From ", from), h("label", {}, "to ", to), " ",
    savesFile(button("Report (PDF)"), report("pdf")), " ",
    savesFile(button("Report (Excel)"), report("xlsx")));
}

/** A button that saves the stored file at `path` (a scheduled report's). */
export function fileButton(path, label) {
  return savesFile(h("button", { type: "button", class: "link" }, label),
    () => apiFile(path));
}

/** A short message in the corner; errors stay until dismissed. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast toast-${kind}` }, h("span", {}, message),
    h("button", { type: "button", class: "link", "aria-label": "Dismiss",
      onclick: () => item.remove() }, "×"));
  box.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 5000);
}

/** An error where a page's content would be. */
export function failure(error) {
  return h("div", { class: "failure", role: "alert" },
    h("strong", {}, error.status ? `Error ${error.status}` : "Error"), ": ",
    error.message || String(error));
}

/** A labelled form field. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control,
    hint ? h("small", { class: "muted" }, hint) : null);
}

/** A <select> of options [value, label]. */
export function select(name, options, current) {
  return h("select", { name }, options.map(([value, label]) =>
    h("option", { value, selected: String(value) === String(current ?? "") }, label)));
}

/** A page's title and the line under it. */
export function heading(title, ...aside) {
  return h("div", { class: "page-head" }, h("h1", {}, title),
    aside.length ? h("div", { class: "page-tools" }, aside) : null);
}

/** A heat map of counts at points: a blurred red disc a point, larger and
 * stronger with its count (relative to the largest), blended so that near
 * points add up. `points`: [{x, y, count}]; `reach`: the largest disc's radius. */
export function heatLayer(points, reach) {
  const hot = points.filter((p) => p.count > 0);
  if (!hot.length) return null;
  const most = Math.max(...hot.map((p) => p.count));
  return svg("g", { class: "heat-map", "aria-hidden": "true" },
    svg("defs", {}, svg("radialGradient", { id: "heat-spot" },
      svg("stop", { offset: "0", "stop-color": "#d7301f", "stop-opacity": "0.85" }),
      svg("stop", { offset: "0.45", "stop-color": "#fc8d59", "stop-opacity": "0.45" }),
      svg("stop", { offset: "1", "stop-color": "#fdcc8a", "stop-opacity": "0" }))),
    hot.map((p) => {
      const share = p.count / most;
      return svg("circle", { cx: p.x, cy: p.y, r: reach * (0.35 + 0.65 * Math.sqrt(share)),
        fill: "url(#heat-spot)", "fill-opacity": 0.45 + 0.55 * share, class: "heat-spot" });
    }));
}

export const HEAT_PERIODS = [[7, "the last 7 days"], [30, "the last 30 days"],
  [365, "the last year"], [3650, "the last 10 years"]];

/** How a period of the heat map reads: "the last 30 days". */
export function heatPeriod(days) {
  return HEAT_PERIODS.find(([d]) => d === days)[1];
}

/** The heat map's period in days, from the page's query (default 7). */
export function heatDays(query) {
  const days = Number(query.get("days"));
  return HEAT_PERIODS.some(([d]) => d === days) ? days : 7;
}

/** A choice of the heat map's period that opens `path` with `?days=`. */
export function heatPicker(path, days) {
  const choice = select("days", HEAT_PERIODS, days);
  choice.addEventListener("change", () => { location.hash = `${path}?days=${choice.value}`; });
  return field("Incidents of", choice);
}
