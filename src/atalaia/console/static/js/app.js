// The console's shell: the signed-in session, the header and the hash router.

import { afterSignIn, api, limitedTo, session, signIn, signOut } from "./api.js";
import { finishSignIn } from "./oidc.js";
import { clear, failure, h, heading } from "./ui.js";

// "#/incidents/12" → the page module and its parameters.
const ROUTES = [
  [/^#\/signin$/, "signin"],
  [/^#\/fleet$/, "fleet"],
  [/^#\/incidents$/, "incidents"],
  [/^#\/incidents\/(\d+)$/, "incident"],
  [/^#\/series\/([^/?]+)$/, "series"],
  [/^#\/sensors\/([^/?]+)$/, "sensor"],
  [/^#\/training$/, "training"],
  [/^#\/models$/, "models"],
  [/^#\/alerts$/, "alerts"],
  [/^#\/sites$/, "sites"],
  [/^#\/sites\/([^/?]+)$/, "site"],
];
const HOME = "#/fleet";
// Pages of fleet-wide views only (GET /models/overview): the server refuses
// them to a token limited to sensor groups, so the console neither lists nor
// opens them for one. Pages that mix in a fleet-wide section leave it out
// themselves (limitedTo()); a limited token's Fleet page shows its sensors.
const FLEET_WIDE = new Set(["models"]);

let leave = null; // the current page's clean-up (timers, charts)
let turn = 0; // which navigation is current: a slow page never paints over a newer one

function match(hash) {
  const [path, query = ""] = hash.split("?");
  for (const [pattern, page] of ROUTES) {
    const found = pattern.exec(path);
    if (found) {
      return { page, params: found.slice(1).map(decodeURIComponent),
        query: new URLSearchParams(query) };
    }
  }
  return null;
}

/** Who the token names; null when it is missing or refused. */
async function whoAmI() {
  if (session.who) return session.who;
  if (!session.token && (await api("/auth/config")).auth_enabled) return null;
  try {
    session.who = await api("/auth/whoami");
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
  return session.who;
}

function showWho() {
  const box = document.getElementById("who");
  const who = session.who;
  document.body.classList.toggle("signed-out", !who);
  if (!who) {
    clear(box);
    return;
  }
  clear(box,
    h("span", { class: "subject" }, who.subject), " ",
    h("span", { class: "badge badge-role" }, who.role.replace("_", " ")),
    groupsBadge(who),
    who.auth_enabled ? h("button", {
      type: "button", class: "link", onclick: () => {
        signOut();
        showWho();
        location.hash = "#/signin";
      },
    }, "Sign out") : null);
}

/** The sensor groups a limited token covers (none for a full token); a group
 *  the platform does not configure covers nothing, and says so. */
function groupsBadge(who) {
  if (!who.groups) return null;
  const unknown = new Set(who.unknown_groups);
  const names = who.groups.map((g) => (unknown.has(g) ? `${g} (not configured)` : g));
  const text = names.join(", ") || "none";
  return h("span", { class: "badge badge-groups", title: `Sensor groups: ${text}` },
    h("span", { class: "visually-hidden" }, "Sensor "), "groups: ", text);
}

/** Offer a limited token only the pages it may open. */
function showNav() {
  const limited = limitedTo() !== null;
  for (const link of document.querySelectorAll("#nav a")) {
    link.parentElement.hidden = limited && FLEET_WIDE.has(link.dataset.page);
  }
}

/** What a limited token sees on a fleet-wide page: why, and where to go. */
function fleetWide(main, page) {
  const title = document.querySelector(`#nav a[data-page="${page}"]`).textContent;
  const groups = limitedTo().join(", ") || "none";
  main.append(heading(title), h("div", { class: "notice", role: "note" },
    h("p", {}, h("strong", {}, `Your token covers sensor groups ${groups}; this view is fleet-wide.`)),
    h("p", {}, `${title} spans every series of the platform, which a token limited to `
      + "sensor groups may not see. Your sensors are on the ",
    h("a", { href: HOME }, "Fleet"), " page, their incidents on the ",
    h("a", { href: "#/incidents" }, "Incidents"), " page.")));
}

function markNav(page) {
  const section = { incident: "incidents", series: "fleet", sensor: "fleet",
    site: "sites" }[page] || page;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const hash = location.hash || HOME;
  if (!hash.startsWith("#/")) return; // an in-page anchor (the skip link)
  const found = match(hash);
  if (!found) {
    location.replace(HOME);
    return;
  }
  const mine = ++turn;
  if (leave) leave();
  leave = null;
  const main = document.getElementById("main");
  main.setAttribute("aria-busy", "true");
  delete main.dataset.ready;
  try {
    const who = found.page === "signin" ? null : await whoAmI();
    if (mine !== turn) return;
    if (!who && found.page !== "signin") {
      sessionStorage.setItem("atalaia.after", hash);
      location.replace("#/signin");
      return;
    }
    showWho();
    showNav();
    markNav(found.page);
    if (limitedTo() && FLEET_WIDE.has(found.page)) {
      clear(main);
      fleetWide(main, found.page);
    } else {
      const module = await import(`./pages/${found.page}.js`);
      if (mine !== turn) return;
      clear(main);
      leave = (await module.render(main, found.params, found.query)) || null;
    }
  } catch (error) {
    if (mine !== turn) return;
    if (error.status === 401) {
      signOut();
      location.replace("#/signin");
      return;
    }
    clear(main, failure(error));
  }
  if (mine !== turn) return;
  main.setAttribute("aria-busy", "false");
  main.dataset.ready = hash; // what the page shows is loaded (tests wait on it)
}

document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});

/** Back from the provider's sign-in: keep its token if the API takes it, or
 *  say on the sign-in page why not. */
async function returnFromProvider() {
  try {
    const token = await finishSignIn();
    if (!token) return;
    signIn(token);
    session.who = await api("/auth/whoami");
    location.replace(afterSignIn());
  } catch (error) {
    signOut();
    sessionStorage.setItem("atalaia.signin.error", error.message);
    location.replace("#/signin");
  }
}

returnFromProvider().then(() => {
  window.addEventListener("hashchange", route);
  route();
});
