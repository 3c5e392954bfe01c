// Sign in through the OpenID Connect provider (when the platform has one), or
// with a bearer token (from `atalaia token create` or .atalaia/admin-token).

import { afterSignIn, api, session, signIn, signOut } from "../api.js";
import { startSignIn } from "../oidc.js";
import { field, h, heading } from "../ui.js";

const ERROR_KEY = "atalaia.signin.error"; // why the provider's sign-in failed

/** "Sign in with <provider>", or nothing when the platform has none. */
function providerSignIn(config, error) {
  if (!config.oidc) return null;
  const button = h("button", { type: "button", class: "provider" },
    `Sign in with ${config.oidc.name}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await startSignIn(config.oidc);
    } catch (failed) {
      button.disabled = false;
      error.textContent = failed.message;
      error.hidden = false;
    }
  });
  return h("div", { class: "provider-signin" }, button);
}

export async function render(main) {
  const config = await api("/auth/config");
  const token = h("textarea", {
    name: "token", rows: 4, required: true, autocomplete: "off", spellcheck: "false",
  });
  const error = h("p", { class: "failure", role: "alert", hidden: true });
  const returned = sessionStorage.getItem(ERROR_KEY);
  sessionStorage.removeItem(ERROR_KEY);
  if (returned) {
    error.textContent = returned;
    error.hidden = false;
  }
  const form = h("form", { class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    providerSignIn(config, error),
    h("p", { class: "muted" },
      config.oidc ? "Or paste a bearer token: " : "Paste a bearer token: ", h("code", {}, "atalaia token create --subject you --role viewer"),
      " makes one; the embedded server writes an admin token to ",
      h("code", {}, ".atalaia/admin-token"), "."),
    field("Token", token),
    error,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    signIn(token.value.trim());
    try {
      session.who = await api("/auth/whoami");
    } catch (failed) {
      signOut();
      error.textContent = failed.status === 401
        ? `This token is refused: ${failed.message}`
        : failed.message;
      error.hidden = false;
      return;
    }
    location.hash = afterSignIn();
  });
  main.append(heading("atalaia console"), form);
  token.focus();
}
