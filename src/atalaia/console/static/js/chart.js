// A series' chart: readings decimated by the server, the model's expected value
// and band, anomalies, change points, incidents and the training window, with
// zoom (drag, or + and −), pan (← →), reset (0 or double-click) and CSV of
// what it shows. Each zoom asks the server again for that window in detail.

import { api } from "./api.js";
import { clear, csvButton, h, num, table, when } from "./ui.js";

const COLORS = {
  value: "#1f5fa8",
  expected: "#5b6472",
  band: "rgba(40, 140, 80, 0.16)",
  bandEdge: "rgba(40, 120, 70, 0.55)",
  anomaly: "#c62828",
  changepoint: "#7b3fa0",
  training: "rgba(120, 120, 120, 0.10)",
  incident: { minor: "rgba(245, 184, 46, 0.22)", major: "rgba(230, 110, 20, 0.24)",
    critical: "rgba(198, 40, 40, 0.24)" },
};
const SHOWN_ANOMALY_ROWS = 200;

export class SeriesChart {
  /**
   * @param container where the chart goes
   * @param seriesId the series to draw
   * @param options {height, title, syncKey, onZoom(start, end), marks} — with
   *   onZoom the owner decides what a zoom loads (a sensor's axes zoom together);
   *   marks [{t, value}] are readings ringed (an incident's peak, which the
   *   anomaly log holds even when the reading itself was never stored)
   */
  constructor(container, seriesId, options = {}) {
    this.seriesId = seriesId;
    this.options = options;
    this.data = null;
    this.plot = null;
    this.initial = null; // the first window, for reset
    this.request = null;
    this.box = h("div", { class: "chart", tabindex: 0, role: "group",
      "aria-label": `Chart of ${seriesId}. Arrow keys pan, plus and minus zoom, 0 resets.` });
    this.status = h("p", { class: "chart-status muted", "aria-live": "polite" }, "Loading…");
    this.tools = h("div", { class: "chart-tools" });
    this.details = h("div");
    container.append(h("figure", { class: "chart-figure" },
      options.title ? h("figcaption", {}, options.title) : null,
      this.tools, this.box, this.status, this.details));
    this.box.addEventListener("keydown", (event) => this.key(event));
    this.box.addEventListener("dblclick", () => this.reset());
    this.resize = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.height() });
    });
    this.resize.observe(this.box);
  }

  width() {
    return Math.max(280, this.box.clientWidth || 800);
  }

  height() {
    return this.options.height || 320;
  }

  /** Load and draw [start, end) (epoch seconds; undefined: the server's
   * default). A refusal (a window outside the platform's time range, a series
   * gone) is written under the chart; the page goes on. */
  async load(start, end) {
    if (this.request) this.request.abort();
    const request = (this.request = new AbortController());
    this.status.textContent = "Loading…";
    let data;
    try {
      data = await api(`/series/${encodeURIComponent(this.seriesId)}/chart`, {
        query: { start, end, points: Math.min(5000, Math.max(100, Math.round(this.width()))) },
        signal: request.signal,
      });
    } catch (error) {
      if (error.name === "AbortError" || request !== this.request) return;
      this.request = null;
      this.status.textContent = error.message;
      this.status.classList.add("failure");
      return;
    }
    if (request !== this.request) return;
    this.request = null;
    this.status.classList.remove("failure");
    this.data = data;
    if (!this.initial) this.initial = [data.window.start, data.window.end];
    this.draw();
    this.describe();
    requestAnimationFrame(() => performance.mark(`atalaia:chart:${this.seriesId}`)); // on screen
  }

  /** A zoom or pan to [start, end): the owner's, or this chart's own. */
  zoom(start, end) {
    if (this.options.onZoom) this.options.onZoom(start, end);
    else this.load(start, end);
  }

  reset() {
    if (this.initial) this.zoom(...this.initial);
  }

  pan(fraction) {
    const { start, end } = this.data.window;
    const step = (end - start) * fraction;
    this.zoom(start + step, end + step);
  }

  scale(factor) {
    const { start, end } = this.data.window;
    const middle = (start + end) / 2, half = ((end - start) * factor) / 2;
    this.zoom(middle - half, middle + half);
  }

  key(event) {
    if (!this.data) return;
    const actions = {
      ArrowLeft: () => this.pan(-0.5), ArrowRight: () => this.pan(0.5),
      "+": () => this.scale(0.5), "=": () => this.scale(0.5), "-": () => this.scale(2),
      0: () => this.reset(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  table() {
    const { points, band } = this.data;
    return points.t.map((t, i) => [t, points.value[i],
      band ? band.expected[i] : null, band ? band.lower[i] : null, band ? band.upper[i] : null]);
  }

  draw() {
    const { points, band } = this.data;
    const columns = [points.t, points.value];
    const series = [{}, { label: "value", stroke: COLORS.value, width: 1.25,
      value: (_u, v) => num(v, 5) }];
    if (band) {
      columns.push(band.expected, band.lower, band.upper);
      series.push(
        { label: "expected", stroke: COLORS.expected, dash: [6, 4], width: 1,
          value: (_u, v) => num(v, 5) },
        { label: "lower", stroke: COLORS.bandEdge, width: 1, value: (_u, v) => num(v, 5) },
        { label: "upper", stroke: COLORS.bandEdge, width: 1, value: (_u, v) => num(v, 5) });
    }
    const options = {
      width: this.width(), height: this.height(),
      scales: {
        x: { time: true, range: () => [this.data.window.start, this.data.window.end] },
        y: { range: (_u, lo, hi) => this.yRange(lo, hi) },
      },
      series,
      bands: band ? [{ series: [4, 3], fill: COLORS.band }] : [],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        sync: this.options.syncKey ? { key: this.options.syncKey } : undefined,
      },
      hooks: {
        draw: [(u) => this.overlay(u)],
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const start = u.posToVal(u.select.left, "x");
          const end = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          this.zoom(start, end);
        }],
      },
    };
    if (this.plot) this.plot.destroy();
    clear(this.box);
    this.plot = new uPlot(options, columns, this.box);
  }

  /** The lines' value range, widened to the marks, with a margin. */
  yRange(lo, hi) {
    for (const mark of this.options.marks || []) {
      lo = Math.min(lo, mark.value);
      hi = Math.max(hi, mark.value);
    }
    const margin = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
    return [lo - margin, hi + margin];
  }

  /** Training window, incidents, change points and anomalies over the lines. */
  overlay(u) {
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const x = (t) => u.valToPos(t, "x", true);
    const span = (from, to, fill) => {
      const a = Math.max(left, x(from)), b = Math.min(left + width, x(to));
      if (b > a) {
        ctx.fillStyle = fill;
        ctx.fillRect(a, top, b - a, height);
      }
    };
    ctx.save();
    const training = this.data.training_window;
    if (training) span(training.start, training.end, COLORS.training);
    for (const incident of this.data.incidents) {
      span(incident.start, Math.max(incident.end, incident.start + 1),
        COLORS.incident[incident.severity] || COLORS.incident.minor);
    }
    ctx.strokeStyle = COLORS.changepoint;
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    for (const t of this.data.changepoints) {
      const at = x(t);
      if (at < left || at > left + width) continue;
      ctx.beginPath();
      ctx.moveTo(at, top);
      ctx.lineTo(at, top + height);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.strokeStyle = COLORS.anomaly;
    ctx.lineWidth = 2 * devicePixelRatio;
    for (const mark of this.options.marks || []) {
      const px = x(mark.t), py = u.valToPos(mark.value, "y", true);
      if (px < left || px > left + width) continue;
      ctx.beginPath();
      ctx.arc(px, py, 7 * devicePixelRatio, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.fillStyle = COLORS.anomaly;
    const radius = 3 * devicePixelRatio;
    const { t, value } = this.data.anomalies;
    for (let i = 0; i < t.length; i++) {
      const px = x(t[i]), py = u.valToPos(value[i], "y", true);
      if (px < left || px > left + width) continue;
      ctx.beginPath();
      ctx.arc(px, py, radius, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.restore();
  }

  /** The summary line, the CSV buttons and the anomalies' table. */
  describe() {
    const d = this.data;
    const model = d.model ? `version ${d.model.version} (${d.model.stage}, ${d.model.algorithm})` : "no model";
    this.status.textContent =
      `${when(d.window.start)} – ${when(d.window.end)}: ${d.readings.toLocaleString()} readings` +
      (d.decimated ? `, drawn as ${d.points.t.length.toLocaleString()} points` : "") +
      `; ${d.anomalies_total.toLocaleString()} anomalies; ${model}.`;
    const name = this.seriesId;
    clear(this.tools,
      h("button", { type: "button", class: "secondary", onclick: () => this.pan(-0.5),
        "aria-label": "Pan left" }, "←"),
      h("button", { type: "button", class: "secondary", onclick: () => this.scale(0.5),
        "aria-label": "Zoom in" }, "+"),
      h("button", { type: "button", class: "secondary", onclick: () => this.scale(2),
        "aria-label": "Zoom out" }, "−"),
      h("button", { type: "button", class: "secondary", onclick: () => this.pan(0.5),
        "aria-label": "Pan right" }, "→"),
      h("button", { type: "button", class: "secondary", onclick: () => this.reset() }, "Reset"),
      csvButton("Points CSV", `${name}-points.csv`,
        ["timestamp", "value", "expected", "lower", "upper"], () => this.table()),
      csvButton("Anomalies CSV", `${name}-anomalies.csv`,
        ["timestamp", "value", "score", "reason"],
        () => d.anomalies.t.map((t, i) => [t, d.anomalies.value[i], d.anomalies.score[i],
          d.anomalies.reason[i]])));
    const rows = d.anomalies.t.map((t, i) => ({ t, value: d.anomalies.value[i],
      score: d.anomalies.score[i], reason: d.anomalies.reason[i] }))
      .sort((a, b) => b.score - a.score).slice(0, SHOWN_ANOMALY_ROWS);
    clear(this.details, rows.length ? h("details", {},
      h("summary", {}, `Anomalies in this window (${rows.length < d.anomalies_total ? `top ${rows.length} of ` : ""}${d.anomalies_total.toLocaleString()})`),
      table([
        { label: "Time", value: (r) => when(r.t), sort: (r) => r.t },
        { label: "Value", value: (r) => num(r.value, 5), num: true },
        { label: "Score", value: (r) => num(r.score), sort: (r) => r.score, num: true },
        { label: "Reason", value: (r) => r.reason },
      ], rows)) : null);
  }

  destroy() {
    if (this.request) this.request.abort();
    this.resize.disconnect();
    if (this.plot) this.plot.destroy();
  }
}
