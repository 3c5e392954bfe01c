// A series: its chart, what serves it, its drift, and its versions with the
// promote and roll back actions for the roles that may use them.

import { api, may } from "../api.js";
import { SeriesChart } from "../chart.js";
import { badge, clear, field, h, heading, num, pct, shortId, table, toast, when } from "../ui.js";

// What `promote` takes: Production at once, a canary (5 % of the readings,
// 15 % more every 2 h while its gates hold), or a shadow (24 h beside
// production, then a canary if its comparison passes).
const STRATEGIES = [["direct", "Direct"], ["canary", "Canary"], ["shadow", "Shadow, then canary"]];

/** The sensor of `sensor_001_radial` is `sensor_001`; a series without an axis
 * (its id's last `_` part is not letters) is a sensor of its own. */
export function sensorOf(seriesId) {
  const cut = seriesId.lastIndexOf("_");
  return cut > 0 && /^[A-Za-z]+$/.test(seriesId.slice(cut + 1)) ? seriesId.slice(0, cut) : seriesId;
}

export async function render(main, [seriesId]) {
  const sensor = sensorOf(seriesId);
  const chartBox = h("section", { "aria-label": "Chart" });
  const serving = h("section", { "aria-labelledby": "serving-title" });
  const versions = h("section", { "aria-labelledby": "versions-title" });
  main.append(heading(seriesId, sensor === seriesId ? null
    : h("a", { href: `#/sensors/${encodeURIComponent(sensor)}` }, `Sensor ${sensor}`)),
  chartBox, serving, versions);
  const chart = new SeriesChart(chartBox, seriesId, { height: 360 });

  async function refresh() {
    const config = await api(`/models/${encodeURIComponent(seriesId)}/deployment-config`);
    const hasVersions = config.production_version !== null
      || config.staging_versions.length > 0 || config.history.length > 0;
    const [list, metrics] = hasVersions ? await Promise.all([
      api(`/models/${encodeURIComponent(seriesId)}/versions`),
      api(`/models/${encodeURIComponent(seriesId)}/metrics`, { query: { window: "24h" } }),
    ]) : [[], null];
    showServing(config, metrics);
    showVersions(list, config);
  }

  /** A running canary, or the latest shadow: its split, figures and end. */
  function rolloutCard(rollout) {
    const figures = rollout.figures;
    const running = rollout.state === "running";
    const title = rollout.strategy === "canary"
      ? `Canary of version ${rollout.candidate_version}: ${num(rollout.split.candidate)} % of the readings`
      : `Shadow of version ${rollout.candidate_version}: ${running ? "scoring every reading, answering none"
        : rollout.decision === "canary" ? "passed" : rollout.state}`;
    const cancel = running && may("ml_engineer")
      ? h("button", { type: "button", class: "danger" }, "End it") : null;
    cancel?.addEventListener("click", async () => {
      try {
        await api(`/rollouts/${rollout.id}/cancel`, { method: "POST", body: { reason: "from the console" } });
        toast(`${rollout.strategy} ended`);
        await refresh();
      } catch (error) {
        toast(error.message, "error");
      }
    });
    return h("div", { class: "card", role: "group", "aria-label": title }, h("h3", {}, title),
      h("dl", { class: "facts" },
        fact("Started", when(rollout.started_at)),
        running ? fact(rollout.strategy === "canary" ? "Next step" : "Decides", when(rollout.next_step_at))
          : fact("Ended", `${when(rollout.ended_at)}: ${rollout.outcome}`),
        fact("Candidate", `${num(figures.candidate.predictions)} readings, errors ${pct(figures.candidate.error_rate)}, `
          + `anomalies ${pct(figures.candidate.anomaly_rate)}`),
        fact("Production, same readings", figures.paired.readings
          ? `${num(figures.paired.readings)} readings, anomalies ${pct(figures.paired.production_anomaly_rate)}, `
            + `agreement ${pct(figures.paired.agreement)}`
          : "none scored by both yet")),
      cancel);
  }

  function showServing(config, metrics) {
    const drift = metrics ? metrics.drift_detection : null;
    const predictions = metrics ? metrics.predictions : null;
    clear(serving, h("h2", { id: "serving-title" }, "Serving"),
      h("dl", { class: "facts" },
        fact("Production", config.production_version === null ? "none"
          : `version ${config.production_version} (${config.production_algorithm})`),
        fact("Strategy", config.split
          ? `${config.strategy}: production ${num(config.split.production)} %, candidate ${num(config.split.candidate)} %`
          : config.strategy),
        fact("Staging", config.staging_versions.length ? config.staging_versions.join(", ") : "none"),
        predictions ? fact("Predictions, 24 h", num(predictions.predictions ?? predictions.count)) : null,
        predictions ? fact("Anomaly rate, 24 h", pct(predictions.anomaly_rate)) : null,
        drift ? fact("Data drift", drift.data_drift_detected
          ? badge(`detected (PSI ${num(drift.psi)})`, "critical") : `none (PSI ${num(drift.psi)})`) : null,
        drift ? fact("Concept drift", drift.concept_drift_detected
          ? badge(`detected (${drift.false_alarms} false alarms of ${drift.feedback_labels} labels)`, "critical")
          : `none (${drift.feedback_labels} labels)`) : null),
      config.canary ? rolloutCard(config.canary) : null,
      config.shadow && (config.shadow.state === "running" || !config.canary) ? rolloutCard(config.shadow) : null);
  }

  function showVersions(list, config) {
    const engineer = may("ml_engineer");
    clear(versions, h("h2", { id: "versions-title" }, "Versions"),
      table([
        { label: "Version", value: (v) => String(v.version), sort: (v) => -v.version, num: true },
        { label: "Stage", value: (v) => badge(v.stage, `stage-${v.stage}`), sort: (v) => v.stage },
        { label: "Algorithm", value: (v) => v.algorithm },
        { label: "Created", value: (v) => when(v.created_at),
          sort: (v) => v.created_at },
        { label: "Metrics", value: (v) => metricList(v.metrics) },
        { label: "Lineage", value: (v) => lineage(v.lineage) },
        ...(engineer ? [{ label: "Actions", value: (v) => actions(v, running(config)) }] : []),
      ], list, { empty: "No model has been trained for this series yet." }),
      engineer && list.some((v) => v.stage === "archived") ? rollback() : null);
  }

  function actions(version, rollout) {
    if (version.stage !== "staging") return "—";
    if (rollout) {
      return rollout.candidate_version === version.version ? `in ${rollout.strategy}` : "—";
    }
    const strategy = h("select", { name: "strategy", "aria-label": `Strategy for version ${version.version}` },
      STRATEGIES.map(([value, label]) => h("option", { value }, label)));
    const archive = h("input", { type: "checkbox", name: "archive_existing", checked: true });
    const promoteForm = h("form", { class: "inline" }, strategy,
      h("label", { class: "check" }, archive, " archive the current"),
      h("button", { type: "submit" }, `Promote v${version.version}`));
    promoteForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const direct = strategy.value === "direct";
        const body = direct ? { strategy: "direct", archive_existing: archive.checked }
          : { strategy: strategy.value };
        await api(`/models/${encodeURIComponent(seriesId)}/versions/${version.version}/promote`,
          { method: "POST", body: { ...body, reason: "from the console" } });
        toast(direct ? `Version ${version.version} promoted`
          : `${strategy.value === "canary" ? "Canary" : "Shadow"} of version ${version.version} started`);
        await refresh();
      } catch (error) {
        toast(error.message, "error");
      }
    });
    return promoteForm;
  }

  function rollback() {
    const reason = h("input", { name: "reason", autocomplete: "off" });
    const form = h("form", { class: "card action" }, h("h3", {}, "Roll back"),
      h("p", { class: "muted" }, "Put back the version that served before the current one."),
      field("Why", reason, "optional"), h("button", { type: "submit", class: "danger" }, "Roll back"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api(`/models/${encodeURIComponent(seriesId)}/rollback`,
          { method: "POST", body: { reason: reason.value } });
        toast("Rolled back");
        await refresh();
      } catch (error) {
        toast(error.message, "error");
      }
    });
    return form;
  }

  await chart.load(); // the chart first: what the page is opened for
  await refresh();
  return () => chart.destroy();
}

/** The series' running canary or shadow, if any: one at a time. */
function running(config) {
  return [config.canary, config.shadow].find((r) => r && r.state === "running") || null;
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function metricList(metrics) {
  const entries = Object.entries(metrics || {}).slice(0, 6);
  if (!entries.length) return "—";
  return h("ul", { class: "plain" }, entries.map(([k, v]) =>
    h("li", {}, `${k.replaceAll("_", " ")}: ${num(v)}`)));
}

function lineage(data) {
  if (!data) return "—";
  const span = data.data_window;
  return h("ul", { class: "plain" },
    h("li", {}, "job ", h("code", { title: data.job_id }, shortId(data.job_id))),
    span ? h("li", {}, `data ${when(span.start)} – ${when(span.end)}`) : null,
    data.data_points ? h("li", {}, `${num(data.data_points)} points, hash ${String(data.data_hash).slice(0, 12)}`) : null,
    data.package_version ? h("li", {}, `atalaia ${data.package_version}`) : null);
}
