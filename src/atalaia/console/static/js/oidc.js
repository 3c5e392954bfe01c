// Sign in through the OpenID Connect provider: the authorization code flow with
// PKCE (S256), the console being a public client. The provider sends the
// browser back to the console's own address with ?code=&state=; the code is
// exchanged at the provider's token endpoint from here. The access token (the
// one whose audience is the API) is kept like a pasted token; the ID token
// only proves the nonce.

const PENDING_KEY = "atalaia.oidc"; // what the return is checked against

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The claims of a JWT, unverified ({} when unreadable). */
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

/** Leave for the provider's sign-in page (`provider`: /auth/config's oidc). */
export async function startSignIn(provider) {
  const pending = {
    verifier: randomText(48),
    state: randomText(16),
    nonce: randomText(16),
    token_endpoint: provider.token_endpoint,
    client_id: provider.client_id,
    redirect_uri: new URL("./", location.href).href, // the console's own address
  };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(provider.authorization_endpoint);
  const query = {
    response_type: "code",
    client_id: pending.client_id,
    redirect_uri: pending.redirect_uri,
    scope: provider.scopes,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await challengeOf(pending.verifier),
    code_challenge_method: "S256",
  };
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  location.assign(url.href);
}

/** On the return from the provider: its access token (rejects with why not);
 *  null when this page load is no such return. */
export async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  history.replaceState(null, "", location.pathname); // the code leaves the address bar
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  sessionStorage.removeItem(PENDING_KEY);
  if (params.has("error")) {
    throw new Error(`The provider refused: ${params.get("error_description") || params.get("error")}`);
  }
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("This sign-in answer does not match the request made (state): sign in again.");
  }
  const response = await fetch(pending.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: pending.redirect_uri,
      client_id: pending.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    throw new Error(`The provider did not exchange the code: ${answer.error_description || answer.error || `HTTP ${response.status}`}`);
  }
  if (claimsOf(answer.id_token).nonce !== pending.nonce) {
    throw new Error("The ID token's nonce does not match the request's: sign in again.");
  }
  return answer.access_token;
}
