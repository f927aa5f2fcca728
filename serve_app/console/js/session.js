// The bearer token lives in this tab's sessionStorage only: never in a URL, a cookie or a
// log. The claims are read for display and navigation; the server verifies every call.

const KEY = "medai.token";

function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("this is not a JWT (three dot-separated parts)");
  const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
  let claims;
  try {
    claims = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")));
  } catch {
    throw new Error("the token's claims could not be read");
  }
  if (typeof claims.sub !== "string" || typeof claims.role !== "string") {
    throw new Error("the token has no sub or role claim");
  }
  return claims;
}

/** Store `token` for this tab, or throw saying why it cannot be a token. */
export function signIn(token) {
  const trimmed = token.trim().replace(/^Bearer\s+/i, "");
  const claims = claimsOf(trimmed);
  if (claims.exp && claims.exp * 1000 <= Date.now()) throw new Error("this token has expired");
  sessionStorage.setItem(KEY, trimmed);
  return claims;
}

export function signOut() {
  sessionStorage.clear();
}

export function token() {
  return sessionStorage.getItem(KEY);
}

/** The signed-in person ({sub, role, exp}), or null. */
export function person() {
  const stored = token();
  if (!stored) return null;
  try {
    const claims = claimsOf(stored);
    if (claims.exp && claims.exp * 1000 <= Date.now()) throw new Error("expired");
    return claims;
  } catch {
    signOut();
    return null;
  }
}

/**
 * A sign-in link (`/ui/#token=…`, as `medai token --link` prints): take the token and wipe it
 * from the address bar and this history entry at once. A fragment never reaches the server.
 */
export function takeTokenFromLink() {
  if (!location.hash.startsWith("#token=")) return null;
  const value = decodeURIComponent(location.hash.slice("#token=".length));
  history.replaceState(null, "", `${location.pathname}#/`);
  return value;
}
