// A sensor: its axes' charts stacked on one time axis (zoom one, zoom all).

import { api } from "../api.js";
import { SeriesChart } from "../chart.js";
import { h, heading, reportButtons, table, when } from "../ui.js";
import { incidentTable } from "./incidents.js";

export async function render(main, [sensorId]) {
  const [series, live] = await Promise.all([
    api("/series", { query: { prefix: `${sensorId}_`, limit: 50 } }),
    api("/incidents", { query: { sensor: sensorId, state: ["open", "acknowledged"], limit: 20 } }),
  ]);
  const axes = series.series.filter((s) => s.sensor_id === sensorId);
  if (!axes.length) {
    location.replace(`#/series/${encodeURIComponent(sensorId)}`); // a series of its own
    return null;
  }
  const charts = h("section", { "aria-label": "Axes" });
  main.append(heading(`Sensor ${sensorId}`, reportButtons(`/reports/sensors/${sensorId}`)),
    live.incidents.length ? incidentTable(live.incidents, "Live incidents") : null, charts,
    table([
      { label: "Series", value: (s) => h("a", { href: `#/series/${encodeURIComponent(s.series_id)}` }, s.series_id) },
      { label: "Readings", value: (s) => s.points.toLocaleString(), num: true },
      { label: "Latest reading", value: (s) => when(s.last_timestamp) },
    ], axes, { caption: "Axes" }));
  const drawn = [];
  const zoomAll = (start, end) => drawn.forEach((c) => c.load(start, end));
  for (const axis of axes) {
    drawn.push(new SeriesChart(charts, axis.series_id, { title: axis.series_id, height: 220,
      syncKey: `sensor-${sensorId}`, onZoom: zoomAll }));
  }
  // One window for all: the first axis's default, then the others at it.
  await drawn[0].load();
  const first = drawn[0].data; // null: its chart was refused, the others choose
  await Promise.all(drawn.slice(1).map((c) => {
    if (!first) return c.load();
    c.initial = [first.window.start, first.window.end];
    return c.load(first.window.start, first.window.end);
  }));
  return () => drawn.forEach((c) => c.destroy());
}
