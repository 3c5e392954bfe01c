// Models: the registry at a glance.

import { api } from "../api.js";
import { badge, h, heading, num, table, when } from "../ui.js";

export async function render(main) {
  const overview = await api("/models/overview", { query: { kind: ["promotion", "rollback"] } });
  const byAlgorithm = Object.entries(overview.production_by_algorithm)
    .sort((a, b) => b[1] - a[1]);
  const most = Math.max(1, ...byAlgorithm.map(([, n]) => n));
  const link = (sid) => h("a", { href: `#/series/${encodeURIComponent(sid)}` }, sid);
  main.append(heading("Models"),
    h("div", { class: "counts" }, Object.entries(overview.stages).map(([stage, n]) =>
      h("div", { class: "count" }, h("strong", {}, num(n)), ` ${stage}`))),
    h("section", { "aria-labelledby": "algorithms-title" },
      h("h2", { id: "algorithms-title" }, "Production versions by algorithm"),
      table([
        { label: "Algorithm", value: ([name]) => name },
        { label: "Series", value: ([, n]) => num(n), num: true },
        { label: "Share", value: ([, n]) => h("span", { class: "bar", style: { width: `${(100 * n) / most}%` },
          role: "presentation" }) },
      ], byAlgorithm, { empty: "Nothing in production yet." })),
    h("section", { "aria-labelledby": "staging-title" },
      h("h2", { id: "staging-title" }, "Staging candidates waiting"),
      table([
        { label: "Series", value: (v) => link(v.series_id), sort: (v) => v.series_id },
        { label: "Version", value: (v) => String(v.version), num: true },
        { label: "Algorithm", value: (v) => v.algorithm, sort: (v) => v.algorithm },
        { label: "Trained", value: (v) => when(v.created_at), sort: (v) => v.created_at },
      ], overview.staging_waiting, { empty: "No candidate waits." })),
    h("section", { "aria-labelledby": "changes-title" },
      h("h2", { id: "changes-title" }, "Recent promotions and rollbacks"),
      table([
        { label: "When", value: (c) => when(c.at), sort: (c) => c.at },
        { label: "Series", value: (c) => link(c.series_id), sort: (c) => c.series_id },
        { label: "Version", value: (c) => String(c.version), num: true },
        { label: "Change", value: (c) => [badge(c.from_stage || "new", `stage-${c.from_stage}`), " → ",
          badge(c.to_stage, `stage-${c.to_stage}`)] },
        { label: "By", value: (c) => c.actor },
        { label: "Why", value: (c) => c.reason || "—" },
      ], overview.recent_changes, { empty: "No stage change yet." })));
}
