// One incident: the chart around it, its explanation, history and actions.

import { api, may } from "../api.js";
import { SeriesChart } from "../chart.js";
import { clear, field, h, heading, num, table, toast, when } from "../ui.js";
import { severityBadge, stateBadge } from "./incidents.js";

const MARGIN_S = 1800; // shown before and after the incident

export async function render(main, [id]) {
  const incident = await api(`/incidents/${id}`);
  const facts = h("div");
  const actions = h("div");
  const history = h("section", { "aria-labelledby": "history-title" });
  const charts = h("section", { "aria-labelledby": "charts-title" },
    h("h2", { id: "charts-title" }, "Around the incident"));
  main.append(heading(`Incident #${incident.id}`), facts, actions, charts, history);
  const drawn = [];

  function show(current) {
    const peak = current.peak || {};
    clear(facts, h("dl", { class: "facts" },
      fact("Severity", severityBadge(current.severity)),
      fact("State", stateBadge(current.state)),
      fact("Sensor", h("a", { href: `#/sensors/${encodeURIComponent(current.sensor_id)}` }, current.sensor_id)),
      fact("Series", current.series.map((s, i) => [i ? ", " : "",
        h("a", { href: `#/series/${encodeURIComponent(s)}` }, s)])),
      fact("Kind", current.kind.replace("_", " ")),
      fact("Started", when(current.started_at)),
      fact("Latest anomaly", when(current.last_at)),
      fact("Anomalous readings", num(current.count)),
      fact("Peak score", num(current.peak_score)),
      fact("Assignee", current.assignee || "—"),
      current.resolved_at ? fact("Resolved", `${when(current.resolved_at)} by ${current.resolved_by}`) : null),
    h("section", { "aria-labelledby": "why-title" },
      h("h2", { id: "why-title" }, "Why"),
      h("p", {}, explanation(peak))));
    clear(history, h("h2", { id: "history-title" }, "History"),
      table([
        { label: "When", value: (l) => when(l.at) },
        { label: "What", value: (l) => l.action },
        { label: "Who", value: (l) => l.actor },
        { label: "Detail", value: (l) => l.detail || "—" },
      ], current.history));
    showActions(current);
  }

  function showActions(current) {
    clear(actions);
    if (!may("data_scientist")) return;
    const act = async (path, body, done) => {
      try {
        show(await api(`/incidents/${current.id}/${path}`, { method: "POST", body }));
        toast(done);
      } catch (error) {
        toast(error.message, "error");
      }
    };
    const assignee = h("input", { name: "assignee", autocomplete: "off" });
    const note = h("input", { name: "note", autocomplete: "off" });
    const comment = h("textarea", { name: "text", rows: 2, required: true });
    const forms = [];
    if (current.state === "open") {
      forms.push(form("Acknowledge", [field("Assignee", assignee, "optional"),
        field("Note", note, "optional")],
      () => act("acknowledge", { assignee: assignee.value.trim() || null, note: note.value },
        "Acknowledged")));
    }
    if (current.state !== "resolved") {
      const why = h("input", { name: "note", autocomplete: "off" });
      forms.push(form("Resolve", [field("Why", why, "optional")],
        () => act("resolve", { note: why.value }, "Resolved")));
    }
    forms.push(form("Comment", [field("Comment", comment)],
      () => act("comment", { text: comment.value }, "Comment added")));
    actions.append(h("section", { class: "actions", "aria-label": "Actions" }, forms));
  }

  show(incident);
  const start = incident.started_at - MARGIN_S;
  const end = Math.max(incident.last_at, incident.resolved_at || 0) + MARGIN_S;
  const key = `incident-${incident.id}`;
  const zoomAll = (a, b) => drawn.forEach((c) => c.load(a, b));
  for (const seriesId of incident.series) {
    const peak = incident.peak || {};
    const marks = peak.series_id === seriesId ? [{ t: peak.timestamp, value: peak.value }] : [];
    const chart = new SeriesChart(charts, seriesId, {
      title: seriesId, height: 240, syncKey: key, onZoom: zoomAll, marks });
    drawn.push(chart);
  }
  await Promise.all(drawn.map((c) => c.load(start, end)));
  return () => drawn.forEach((c) => c.destroy());
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function form(title, fields, submit) {
  const element = h("form", { class: "card action" }, h("h3", {}, title), fields,
    h("button", { type: "submit" }, title));
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  return element;
}

/** The peak reading's explanation in words. */
function explanation(peak) {
  if (peak.value === undefined) return "No explanation was recorded.";
  const parts = [`${peak.series_id || "The series"} read ${num(peak.value, 5)}`];
  if (peak.expected !== undefined && peak.expected !== null) {
    parts.push(` where ${num(peak.expected, 5)} was expected`);
  }
  if (peak.lower !== undefined && peak.upper !== undefined && peak.lower !== null) {
    parts.push(` (normal band ${num(peak.lower, 5)} to ${num(peak.upper, 5)})`);
  }
  parts.push(`: ${String(peak.reason || "anomaly").replaceAll("_", " ")}`);
  if (peak.direction) parts.push(`, ${peak.direction} the band`);
  if (peak.version) parts.push(`; model version ${peak.version}`);
  if (peak.algorithm) parts.push(` (${peak.algorithm})`);
  return `${parts.join("")}.`;
}
