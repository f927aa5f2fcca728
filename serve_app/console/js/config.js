// What the server says about itself before any call: the role table and the lifecycle's
// moves (derived from the code, served at /ui/config.json), and the served models.

let loaded = { grants: {}, promotions: {}, rollback_from: [], models: [], default_model: "" };

export async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`the console's settings did not load (${response.status})`);
  loaded = await response.json();
}

export function config() {
  return loaded;
}

/** Roles that hold `permission`, e.g. rolesWith("models:manage") → ["admin", "ml_engineer"]. */
export function rolesWith(permission) {
  return Object.entries(loaded.grants)
    .filter(([, permissions]) => permissions.includes(permission))
    .map(([role]) => role)
    .sort();
}

export function may(role, permission) {
  return (loaded.grants[role] ?? []).includes(permission);
}
