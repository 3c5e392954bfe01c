// Training: batches with their progress and ETA, recent jobs, failures and retry.
// A token limited to sensor groups sees its series' jobs; batches span the
// fleet (GET /training/batches is refused to it).

import { api, limitedTo, may } from "../api.js";
import { ago, badge, clear, duration, h, heading, num, progress, select, shortId, table, toast, when } from "../ui.js";

const REFRESH_MS = 10_000;
const STATUSES = [["", "Any status"], ["queued", "Queued"], ["running", "Running"],
  ["succeeded", "Succeeded"], ["failed", "Failed"], ["cancelled", "Cancelled"]];

export async function render(main, _params, query) {
  const status = query.get("status") || "";
  const batches = limitedTo() ? null : h("section", { "aria-labelledby": "batches-title" });
  const jobs = h("section", { "aria-labelledby": "jobs-title" });
  const filter = select("status", STATUSES, status);
  filter.setAttribute("aria-label", "Job status");
  filter.addEventListener("change", () => {
    location.hash = filter.value ? `#/training?status=${filter.value}` : "#/training";
  });
  main.append(heading("Training"), ...(batches ? [batches] : []), jobs);

  async function load() {
    const [batchPage, jobPage] = await Promise.all([
      batches && api("/training/batches", { query: { limit: 10 } }),
      api("/training/jobs", { query: { status, limit: 50 } }),
    ]);
    if (batches) {
      clear(batches, h("h2", { id: "batches-title" }, "Batches"),
        batchPage.batches.length ? batchPage.batches.map(batchCard)
          : h("p", { class: "muted" }, "No batch yet: POST /api/v1/training/batch trains many series at once."));
    }
    clear(jobs, h("div", { class: "section-head" },
      h("h2", { id: "jobs-title" }, "Jobs"), filter), jobTable(jobPage.jobs));
  }

  function batchCard(b) {
    const left = b.total - b.done;
    return h("article", { class: "card batch" },
      h("h3", { title: b.batch_id }, `Batch ${shortId(b.batch_id)}`, " ",
        h("span", { class: "muted" }, `${when(b.created_at)}${b.actor ? ` by ${b.actor}` : ""}`
          + (b.algorithm ? `, ${b.algorithm}` : ""))),
      progress([
        { kind: "succeeded", value: b.succeeded, done: true },
        { kind: "failed", value: b.failed, done: true },
        { kind: "cancelled", value: b.cancelled, done: true },
        { kind: "running", value: b.running },
      ], b.total, `Batch ${shortId(b.batch_id)}: ${b.done} of ${b.total} done`),
      h("p", { class: "batch-figures" },
        `${num(b.done)} of ${num(b.total)} done — ${num(b.succeeded)} succeeded, `,
        h("a", { href: "#/training?status=failed" }, `${num(b.failed)} failed`),
        `, ${num(b.running)} running, ${num(b.queued)} queued`,
        left > 0 ? `; ${b.eta_s === null ? "ETA unknown" : `about ${duration(b.eta_s)} left`}`
          + (b.rate_per_s ? ` at ${num(b.rate_per_s)} jobs/s` : "") : ""));
  }

  function jobTable(list) {
    const retry = may("data_scientist");
    return table([
      { label: "Job", value: (j) => h("code", { title: j.job_id }, shortId(j.job_id)), sort: (j) => j.job_id },
      { label: "Series", value: (j) => h("a", { href: `#/series/${encodeURIComponent(j.series_id)}` }, j.series_id),
        sort: (j) => j.series_id },
      { label: "Status", value: (j) => badge(j.status, `job-${j.status}`), sort: (j) => j.status },
      { label: "Algorithm", value: (j) => j.algorithm },
      { label: "Submitted", value: (j) => ago(j.created_at), sort: (j) => j.created_at },
      { label: "Version", value: (j) => (j.model_version === null ? "—" : String(j.model_version)), num: true },
      { label: "Failure", value: (j) => failure(j) },
      ...(retry ? [{ label: "Retry", value: (j) => retryButton(j) }] : []),
    ], list, { empty: "No job." });
  }

  function retryButton(job) {
    if (!["failed", "cancelled"].includes(job.status)) return "—";
    return h("button", { type: "button", class: "secondary",
      "aria-label": `Retry job ${shortId(job.job_id)} of ${job.series_id}`,
      onclick: async () => {
        try {
          const again = await api(`/training/jobs/${job.job_id}/retry`, { method: "POST" });
          toast(`Queued again as ${shortId(again.job_id)}`);
          await load();
        } catch (error) {
          toast(error.message, "error");
        }
      } }, "Retry");
  }

  await load();
  const timer = setInterval(() => {
    if (!document.hidden) load().catch(() => {});
  }, REFRESH_MS);
  return () => clearInterval(timer);
}

function failure(job) {
  if (!job.error) return "—";
  const rule = job.error.rule ? ` (${job.error.rule})` : "";
  return `${job.error.detail || job.error.message || job.error.type || "failed"}${rule}`;
}
