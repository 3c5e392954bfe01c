// The platform's JSON API, with the signed-in token.

const TOKEN_KEY = "atalaia.token";
const BASE = "/api/v1";

export const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  // {subject, role, roles, auth_enabled, groups, unknown_groups} once known
  who: null,
};

export function signIn(token) {
  session.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** Where to go once signed in: the page that asked for it (else the fleet). */
export function afterSignIn() {
  const after = sessionStorage.getItem("atalaia.after") || "#/fleet";
  sessionStorage.removeItem("atalaia.after");
  return after === "#/signin" ? "#/fleet" : after;
}

export function signOut() {
  session.token = null;
  session.who = null;
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Whether the signed-in role is `role` or above. */
export function may(role) {
  return Boolean(session.who && session.who.roles.includes(role));
}

/** The sensor groups the token is limited to; null when it covers every
 *  series. The server refuses a limited token every fleet-wide view (403
 *  `series_access`): the console neither offers nor asks for them. */
export function limitedTo() {
  return (session.who && session.who.groups) || null;
}

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && typeof body === "object" ? body.detail : body;
    const text = Array.isArray(detail)
      ? detail.map((d) => d.msg || JSON.stringify(d)).join("; ")
      : detail || `HTTP ${status}`;
    super(body && body.rule ? `${text} (rule ${body.rule})` : String(text));
    this.status = status;
    this.body = body;
  }
}

/** A URL of the API with `query`'s non-empty values (arrays repeat the key). */
export function apiUrl(path, query = {}) {
  const url = new URL(BASE + path, location.origin);
  for (const [key, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") {
        url.searchParams.append(key, item);
      }
    }
  }
  return url;
}

/** Call the API; resolves to the JSON answer, rejects with an ApiError. */
export async function api(path, { method = "GET", query, body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(apiUrl(path, query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Fetch a file the API makes (a report); resolves to {blob, filename}. */
export async function apiFile(path, query = {}) {
  const headers = session.token ? { Authorization: `Bearer ${session.token}` } : {};
  const response = await fetch(apiUrl(path, query), { headers });
  if (!response.ok) {
    const text = await response.text();
    let data = text;
    try { data = JSON.parse(text); } catch { /* a proxy's page */ }
    throw new ApiError(response.status, data);
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const filename = (/filename="([^"]+)"/.exec(disposition) || [])[1] || "report";
  return { blob: await response.blob(), filename };
}
