// The console's shell: the signed-in session, the header and the hash router.

import { afterSignIn, api, session, signIn, signOut } from "./api.js";
import { finishSignIn } from "./oidc.js";
import { clear, failure, h } from "./ui.js";

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
    who.auth_enabled ? h("button", {
      type: "button", class: "link", onclick: () => {
        signOut();
        showWho();
        location.hash = "#/signin";
      },
    }, "Sign out") : null);
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
    markNav(found.page);
    const module = await import(`./pages/${found.page}.js`);
    if (mine !== turn) return;
    clear(main);
    leave = (await module.render(main, found.params, found.query)) || null;
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
