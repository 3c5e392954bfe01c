// Sign in with a bearer token (from `atalaia token create` or .atalaia/admin-token).

import { api, session, signIn, signOut } from "../api.js";
import { field, h, heading } from "../ui.js";

export async function render(main) {
  const token = h("textarea", {
    name: "token", rows: 4, required: true, autocomplete: "off", spellcheck: "false",
  });
  const error = h("p", { class: "failure", role: "alert", hidden: true });
  const form = h("form", { class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { class: "muted" },
      "Paste a bearer token: ", h("code", {}, "atalaia token create --subject you --role viewer"),
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
    const after = sessionStorage.getItem("atalaia.after") || "#/fleet";
    sessionStorage.removeItem("atalaia.after");
    location.hash = after === "#/signin" ? "#/fleet" : after;
  });
  main.append(heading("atalaia console"), form);
  token.focus();
}
