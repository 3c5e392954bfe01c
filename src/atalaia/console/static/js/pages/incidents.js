// Incidents: the live ones by default; filter, sort the page, page on.

import { api } from "../api.js";
import { ago, badge, clear, csvButton, field, h, heading, num, select, table, when } from "../ui.js";

const PAGE = 50;
const STATES = [["live", "Open or acknowledged"], ["open", "Open"],
  ["acknowledged", "Acknowledged"], ["resolved", "Resolved"], ["any", "Any state"]];
const SEVERITIES = [["", "Any severity"], ["critical", "Critical"], ["major", "Major"],
  ["minor", "Minor"]];
const KINDS = [["", "Any kind"], ["anomaly", "Anomaly"], ["data_quality", "Data quality"]];

export function severityBadge(severity) {
  return badge(severity, severity);
}

export function stateBadge(state) {
  return badge(state, `state-${state}`);
}

export async function render(main, _params, query) {
  const chosen = {
    state: query.get("state") || "live",
    severity: query.get("severity") || "",
    kind: query.get("kind") || "",
    group: query.get("sensor_group") || "",
    prefix: query.get("series_prefix") || "",
  };
  const inputs = {
    state: select("state", STATES, chosen.state),
    severity: select("severity", SEVERITIES, chosen.severity),
    kind: select("kind", KINDS, chosen.kind),
    group: h("input", { type: "search", name: "sensor_group", value: chosen.group }),
    prefix: h("input", { type: "search", name: "series_prefix", value: chosen.prefix }),
  };
  const form = h("form", { class: "filters", role: "search" },
    field("State", inputs.state), field("Severity", inputs.severity),
    field("Kind", inputs.kind), field("Sensor group", inputs.group),
    field("Series prefix", inputs.prefix), h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, input] of Object.entries({ state: inputs.state,
      severity: inputs.severity, kind: inputs.kind, sensor_group: inputs.group,
      series_prefix: inputs.prefix })) {
      if (input.value.trim()) next.set(key, input.value.trim());
    }
    location.hash = `#/incidents?${next}`;
  });
  const list = h("div");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Older incidents");
  let rows = [];
  let cursor = null;

  async function load() {
    const states = { live: ["open", "acknowledged"], any: [] }[chosen.state] ?? [chosen.state];
    const page = await api("/incidents", { query: {
      state: states, severity: chosen.severity, kind: chosen.kind,
      sensor_group: chosen.group, series_prefix: chosen.prefix, after: cursor, limit: PAGE,
    } });
    rows = rows.concat(page.incidents);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    clear(list, incidentTable(rows),
      h("div", { class: "section-head" }, h("span", { class: "muted" }, `${rows.length} shown`),
        csvButton("CSV", "incidents.csv",
          ["id", "severity", "state", "kind", "sensor", "series", "started_at", "last_at",
            "count", "peak_score", "assignee"],
          () => rows.map((i) => [i.id, i.severity, i.state, i.kind, i.sensor_id,
            i.series.join(" "), i.started_at, i.last_at, i.count, i.peak_score, i.assignee]))));
  }
  more.addEventListener("click", () => load());
  main.append(heading("Incidents"), form, list, more);
  await load();
}

export function incidentTable(rows, caption) {
  const rank = { critical: 3, major: 2, minor: 1 };
  return table([
    { label: "Incident", value: (i) => h("a", { href: `#/incidents/${i.id}` }, `#${i.id}`),
      sort: (i) => i.id },
    { label: "Severity", value: (i) => severityBadge(i.severity), sort: (i) => -rank[i.severity] },
    { label: "State", value: (i) => stateBadge(i.state), sort: (i) => i.state },
    { label: "Sensor", value: (i) => h("a", { href: `#/sensors/${encodeURIComponent(i.sensor_id)}` }, i.sensor_id),
      sort: (i) => i.sensor_id },
    { label: "Kind", value: (i) => i.kind.replace("_", " ") },
    { label: "Started", value: (i) => when(i.started_at), sort: (i) => i.started_at },
    { label: "Latest", value: (i) => ago(i.last_at), sort: (i) => -i.last_at },
    { label: "Readings", value: (i) => num(i.count), sort: (i) => -i.count, num: true },
    { label: "Peak score", value: (i) => num(i.peak_score), sort: (i) => -i.peak_score, num: true },
    { label: "Assignee", value: (i) => i.assignee || "—" },
  ], rows, { caption, empty: "No incident matches." });
}
