// Alerts: channels, rules, silences and the notifications with their delivery.
// A token limited to sensor groups sees no notification: they are of the
// whole fleet (GET /alerts/notifications is refused to it).

import { api, limitedTo, may } from "../api.js";
import { ago, badge, field, h, heading, table, toast, when } from "../ui.js";

export async function render(main) {
  const [channels, rules, silences, notifications] = await Promise.all([
    api("/alerts/channels"), api("/alerts/rules"),
    api("/alerts/silences", { query: { active: true } }),
    !limitedTo() && api("/alerts/notifications", { query: { limit: 100 } }),
  ]);
  const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
  main.append(heading("Alerts"),
    ...(notifications ? [notificationSection(notifications.notifications)] : []),
    h("section", { "aria-labelledby": "rules-title" },
      h("h2", { id: "rules-title" }, "Rules"),
      table([
        { label: "Rule", value: (r) => r.name, sort: (r) => r.name },
        { label: "Enabled", value: (r) => (r.enabled ? "yes" : "no") },
        { label: "Channels", value: (r) => r.channels.join(", ") },
        { label: "Incidents", value: (r) => (r.kinds.length
          ? `${r.kinds.join(", ")} from ${r.min_severity}` : "none") },
        { label: "Events", value: (r) => r.events.join(", ") || "—" },
        { label: "Scope", value: (r) => r.series_prefix || r.sensor_group || "all" },
        { label: "Escalation", value: (r) => (r.escalate_after_min
          ? `after ${r.escalate_after_min} min to ${r.escalate_to.join(", ")}` : "—") },
        { label: "From", value: (r) => r.source },
      ], rules.rules, { empty: "No rule: incidents are kept but nobody is told." })),
    h("section", { "aria-labelledby": "channels-title" },
      h("h2", { id: "channels-title" }, "Channels"),
      table([
        { label: "Channel", value: (c) => c.name, sort: (c) => c.name },
        { label: "Type", value: (c) => c.type },
        { label: "Target", value: (c) => c.target },
        { label: "Per minute", value: (c) => String(c.rate_per_min), num: true },
        { label: "From", value: (c) => c.source },
      ], channels.channels, { empty: "No channel." })),
    h("section", { "aria-labelledby": "silences-title" },
      h("h2", { id: "silences-title" }, "Silences"),
      table([
        { label: "Silence", value: (s) => `#${s.id}` },
        { label: "State", value: (s) => (s.active ? badge("active", "delivery-sent") : "to come") },
        { label: "From", value: (s) => when(s.starts_at) },
        { label: "Until", value: (s) => when(s.ends_at) },
        { label: "What", value: (s) => describe(s.matchers) },
        { label: "Why", value: (s) => `${s.reason} (${s.author})` },
        ...(may("data_scientist") ? [{ label: "End", value: (s) => h("button", {
          type: "button", class: "secondary", "aria-label": `End silence ${s.id}`,
          onclick: async () => {
            try {
              await api(`/alerts/silences/${s.id}`, { method: "DELETE" });
              toast(`Silence #${s.id} ended`);
              reload();
            } catch (error) {
              toast(error.message, "error");
            }
          } }, "End") }] : []),
      ], silences.silences, { empty: "No silence." }),
      may("data_scientist") ? silenceForm(reload) : null));
}

/** The notifications sent (of the whole fleet) and how their delivery fared. */
function notificationSection(list) {
  return h("section", { "aria-labelledby": "notifications-title" },
    h("h2", { id: "notifications-title" }, "Recent notifications"),
    table([
      { label: "Created", value: (n) => ago(n.created_at), sort: (n) => -n.created_at },
      { label: "State", value: (n) => badge(n.state, `delivery-${n.state}`), sort: (n) => n.state },
      { label: "Channel", value: (n) => n.channel, sort: (n) => n.channel },
      { label: "Rule", value: (n) => n.rule },
      { label: "Title", value: (n) => (n.incident_id
        ? h("a", { href: `#/incidents/${n.incident_id}` }, n.title) : n.title) },
      { label: "Attempts", value: (n) => String(n.attempts), num: true },
      { label: "Last error", value: (n) => n.last_error || "—" },
    ], list, { empty: "Nothing was sent yet." }));
}

function describe(matchers) {
  const parts = Object.entries(matchers).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k.replaceAll("_", " ")} ${Array.isArray(v) ? v.join(", ") : v}`);
  return parts.join("; ") || "everything";
}

function silenceForm(reload) {
  // A token limited to sensor groups silences only within them: a prefix is required.
  const limited = limitedTo() !== null;
  const prefix = h("input", { name: "series_prefix", autocomplete: "off", required: limited });
  const hours = h("input", { name: "hours", type: "number", min: "0.1", max: "720", step: "0.1", value: "2", required: true });
  const reason = h("input", { name: "reason", required: true, autocomplete: "off" });
  const form = h("form", { class: "card action" }, h("h3", {}, "Silence"),
    field("Series prefix", prefix, limited ? "within your sensor groups" : "empty: everything"),
    field("Hours", hours),
    field("Why", reason), h("button", { type: "submit" }, "Add silence"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("/alerts/silences", { method: "POST", body: {
        duration_s: Number(hours.value) * 3600, reason: reason.value,
        matchers: prefix.value.trim() ? { series_prefix: prefix.value.trim() } : {},
      } });
      toast("Silence added");
      reload();
    } catch (error) {
      toast(error.message, "error");
    }
  });
  return form;
}
