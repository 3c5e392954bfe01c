// A site: its floor plan (an uploaded image) with its machines and sensors
// placed on it, coloured by state, a halo on each sensor in an incident now,
// and the incidents of the last days as a heat map.

import { api, session } from "../api.js";
import {
  h, heading, heatDays, heatLayer, heatPeriod, heatPicker, num, svg, table,
} from "../ui.js";
import { COLORS, LABELS } from "./fleet.js";

const ALERTING = new Set(["anomalous", "minor", "major", "critical"]);

/** The plan's image as a blob: URL (it is read with the token). */
async function planImage(url) {
  const headers = session.token ? { Authorization: `Bearer ${session.token}` } : {};
  const response = await fetch(url, { headers });
  if (!response.ok) throw new Error(`the floor plan: HTTP ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

function link(node) {
  return node.kind === "sensor" ? `#/sensors/${encodeURIComponent(node.id)}` : null;
}

function marker(node, unit) {
  const fill = COLORS[node.state] || "#8a939e";
  const title = svg("title", {}, `${node.name} (${node.kind}): ${LABELS[node.state] || "no series"}`);
  const shape = node.kind === "machine"
    ? svg("rect", { x: node.x - unit, y: node.y - unit, width: unit * 2, height: unit * 2,
      fill, class: "plan-machine", "data-node": node.id, "vector-effect": "non-scaling-stroke" },
    title)
    : svg("circle", { cx: node.x, cy: node.y, r: unit * 0.8, fill, class: "plan-sensor",
      "data-node": node.id, "vector-effect": "non-scaling-stroke" }, title);
  const halo = ALERTING.has(node.state) && node.kind === "sensor"
    ? svg("circle", { cx: node.x, cy: node.y, r: unit * 3, class: "halo",
      "vector-effect": "non-scaling-stroke" }) : null;
  const label = svg("text", { x: node.x + unit * 1.4, y: node.y + unit * 0.4,
    "font-size": unit * 1.6, class: "site-label", "vector-effect": "non-scaling-stroke" },
  node.name);
  const href = link(node);
  return href ? svg("a", { href }, halo, shape, label) : svg("g", {}, halo, shape, label);
}

/** Where the incidents were: each placed sensor's, and a machine's own beyond
 * those of its sensors placed on the plan. */
function incidentPoints(placed) {
  const onSensors = new Map();
  for (const n of placed) {
    if (n.kind === "sensor") onSensors.set(n.parent, (onSensors.get(n.parent) || 0) + n.incidents);
  }
  return placed.map((n) => ({ x: n.x, y: n.y,
    count: n.kind === "sensor" ? n.incidents : n.incidents - (onSensors.get(n.id) || 0) }));
}

export async function render(main, [siteId], query) {
  const days = heatDays(query);
  const plan = await api(`/sites/${encodeURIComponent(siteId)}/plan?days=${days}`);
  const { site, floorplan, placed } = plan;
  main.append(heading(site.name, heatPicker(`#/sites/${encodeURIComponent(siteId)}`, days),
    h("a", { href: "#/sites" }, "All sites")));
  let revoke = null;
  if (floorplan) {
    const url = await planImage(floorplan.url);
    revoke = () => URL.revokeObjectURL(url);
    const unit = Math.max(floorplan.width, floorplan.height) / 90;
    main.append(h("figure", { class: "plan" },
      svg("svg", { class: "floor-plan", role: "group",
        viewBox: `0 0 ${floorplan.width} ${floorplan.height}`,
        "aria-label": `${site.name}'s floor plan with ${placed.length} machines and sensors` },
      svg("image", { href: url, x: 0, y: 0, width: floorplan.width, height: floorplan.height }),
      heatLayer(incidentPoints(placed), unit * 9),
      placed.map((node) => marker(node, unit))),
      h("figcaption", { class: "muted" },
        "Squares are machines (their worst sensor's state), dots sensors; a ring: in an "
        + `incident now; the red glow: incidents of ${heatPeriod(days)}, brighter where more.`)));
  } else {
    main.append(h("p", { class: "muted" },
      `No floor plan yet: PUT /api/v1/sites/${site.id}/floorplan with a PNG, JPEG or WebP image.`));
  }
  main.append(table([
    { label: "Node", value: (n) => (link(n) ? h("a", { href: link(n) }, n.name) : n.name) },
    { label: "Kind", value: (n) => n.kind },
    { label: "State", value: (n) => h("span", {}, h("span", { class: "swatch",
      style: { background: COLORS[n.state] || "#8a939e" } }), " ", LABELS[n.state] || "No series") },
    { label: `Incidents, ${heatPeriod(days).replace("the ", "")}`,
      value: (n) => num(n.incidents), num: true,
      sort: (n) => n.incidents },
    { label: "x, y", value: (n) => `${num(n.x)}, ${num(n.y)}` },
  ], placed, { label: "Placed on the plan", empty: "Nothing placed on the plan." }));
  return revoke;
}
