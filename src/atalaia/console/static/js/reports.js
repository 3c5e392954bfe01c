// The scheduled reports' stored files (GET /reports/files): a section listing
// the newest, each with where it was sent and a button saving it.

import { api } from "./api.js";
import { clear, fileButton, h, num, table } from "./ui.js";

const SHOWN = 10;
const day = (at) => at.slice(0, 10);
const lastDay = (end) => new Date(Date.parse(end) - 1).toISOString().slice(0, 10);

/** How a file's notifications fared, channel by channel. */
function delivered(file) {
  if (!file.deliveries.length) return "—";
  return file.deliveries.map((d) => `${d.channel}: ${d.state}`
    + (d.state !== "sent" && d.last_error ? ` (${d.last_error})` : "")).join(", ");
}

/** A section that fills itself with the newest stored report files. */
export function storedReports() {
  const section = h("section", { "aria-labelledby": "stored-reports-title" });
  const title = h("h2", { id: "stored-reports-title" }, "Stored reports");
  api("/reports/files", { query: { limit: SHOWN } }).then((page) => {
    clear(section, title, table([
      { label: "Period", value: (f) => `${day(f.period_start)} to ${lastDay(f.period_end)}` },
      { label: "Subscription", value: (f) => f.subscription },
      { label: "Covers", value: (f) => f.asset || "Fleet" },
      { label: "Size", value: (f) => `${num(Math.ceil(f.size / 1024))} KB`, num: true },
      { label: "Sent to", value: delivered },
      { label: "File", value: (f) => fileButton(`/reports/files/${encodeURIComponent(f.id)}`,
        `Save ${f.format.toUpperCase()}`) },
    ], page.files, {
      label: "Stored report files",
      empty: "None yet: scheduled reports are stored here once ATALAIA_REPORT_SUBSCRIPTIONS names some.",
    }));
  }).catch((error) => {
    clear(section, title, h("p", { class: "muted" }, `Not listed: ${error.message}`));
  });
  return section;
}
