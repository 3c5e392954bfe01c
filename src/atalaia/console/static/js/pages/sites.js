// Sites: every site on a map (a shipped land outline, no tiles), coloured by its
// worst sensor's state, with a halo as large as its sensors in an incident now
// and the incidents of the last days as a heat map.

import { api } from "../api.js";
import {
  h, heading, heatDays, heatLayer, heatPeriod, heatPicker, num, svg, table,
} from "../ui.js";
import { COLORS, LABELS } from "./fleet.js";

const WORLD = { west: -180, south: -90, east: 180, north: 90 };

let land = null; // the outline, read once

async function outline() {
  if (!land) {
    const topo = await (await fetch("vendor/world/land-110m.json")).json();
    land = window.topojson.feature(topo, topo.objects.land);
  }
  return land;
}

const ASPECT = 2; // the map's width over its height (its CSS says the same)

/** The bounds showing every site with room around them, ASPECT times wider
 * than high. */
function bounds(sites) {
  if (!sites.length) return WORLD;
  const lons = sites.map((s) => s.longitude);
  const lats = sites.map((s) => s.latitude);
  const pad = Math.max(2, (Math.max(...lons) - Math.min(...lons)) * 0.15,
    (Math.max(...lats) - Math.min(...lats)) * 0.15);
  let [west, east] = [Math.min(...lons) - pad, Math.max(...lons) + pad];
  let [south, north] = [Math.min(...lats) - pad, Math.max(...lats) + pad];
  const grow = (east - west) / ASPECT - (north - south);
  if (grow > 0) [south, north] = [south - grow / 2, north + grow / 2];
  else [west, east] = [west + grow * ASPECT / 2, east - grow * ASPECT / 2];
  return { west, east, south, north };
}

function ringPath(ring) {
  return `M${ring.map(([lon, lat]) => `${lon},${-lat}`).join("L")}Z`;
}

function landPaths(geo) {
  const d = [];
  for (const feature of geo.features || [geo]) {
    const geometry = feature.geometry || feature;
    const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    for (const polygon of polygons) for (const ring of polygon) d.push(ringPath(ring));
  }
  return svg("path", { d: d.join(""), class: "land", "vector-effect": "non-scaling-stroke" });
}

function siteMap(entries, geo, days) {
  const placed = entries.filter((e) => e.site.latitude !== null);
  const box = bounds(placed.map((e) => e.site));
  const width = box.east - box.west;
  const unit = width / 120;
  return svg("svg", {
    class: "site-map", role: "group", viewBox: `${box.west} ${-box.north} ${width} ${box.north - box.south}`,
    "aria-label": `${placed.length} sites on a map, coloured by their worst sensor's state`,
  },
  svg("rect", { x: box.west, y: -box.north, width, height: box.north - box.south, class: "sea" }),
  landPaths(geo),
  heatLayer(placed.map((e) => ({ x: e.site.longitude, y: -e.site.latitude, count: e.incidents })),
    unit * 9),
  placed.map((e) => svg("a", { href: `#/sites/${encodeURIComponent(e.site.id)}` },
    e.alerting ? svg("circle", { cx: e.site.longitude, cy: -e.site.latitude,
      r: unit * (2 + 2 * Math.sqrt(e.alerting)), class: "halo",
      "vector-effect": "non-scaling-stroke" }) : null,
    svg("circle", { cx: e.site.longitude, cy: -e.site.latitude, r: unit * 1.4,
      fill: COLORS[e.worst] || "#8a939e", class: "site-dot", "data-site": e.site.id,
      "vector-effect": "non-scaling-stroke" },
    svg("title", {}, `${e.site.name}: ${e.sensors} sensors, ${e.alerting} alerting, `
      + `${e.incidents} incidents in ${heatPeriod(days)}`)),
    svg("text", { x: e.site.longitude + unit * 2, y: -e.site.latitude + unit * 0.8,
      "font-size": unit * 2.4, class: "site-label", "vector-effect": "non-scaling-stroke" },
    e.site.name))));
}

export async function render(main, _params, query) {
  const days = heatDays(query);
  const [{ sites: entries }, geo] = await Promise.all([api(`/sites?days=${days}`), outline()]);
  main.append(heading("Sites", heatPicker("#/sites", days)));
  if (!entries.length) {
    main.append(h("p", { class: "muted" },
      "No site yet: import the asset hierarchy (POST /api/v1/assets/import)."));
    return;
  }
  main.append(h("figure", { class: "map" }, siteMap(entries, geo, days),
    h("figcaption", { class: "muted" },
      "A site's colour is its worst sensor's state; its ring grows with its sensors in an "
      + `incident now; the red glow: its incidents of ${heatPeriod(days)}.`)),
  table([
    { label: "Site", value: (e) => h("a", { href: `#/sites/${encodeURIComponent(e.site.id)}` }, e.site.name) },
    { label: "Sensors", value: (e) => num(e.sensors), num: true, sort: (e) => e.sensors },
    { label: "Alerting", value: (e) => num(e.alerting), num: true, sort: (e) => e.alerting },
    { label: `Incidents, ${heatPeriod(days).replace("the ", "")}`,
      value: (e) => num(e.incidents), num: true,
      sort: (e) => e.incidents },
    { label: "Worst state", value: (e) => (e.worst ? LABELS[e.worst] : "—") },
    { label: "Latitude, longitude", value: (e) => (e.site.latitude === null ? "—"
      : `${e.site.latitude.toFixed(3)}, ${e.site.longitude.toFixed(3)}`) },
  ], entries, { label: "Sites" }));
}
