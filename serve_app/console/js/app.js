// The console's shell: sign-in state, the pages a role may open, hash navigation.

import { onUnauthorized } from "./api.js";
import { config, loadConfig, may, rolesWith } from "./config.js";
import { h } from "./dom.js";
import { clearNotice, fail } from "./notice.js";
import { person, signIn, signOut, takeTokenFromLink } from "./session.js";
import { auditView } from "./views/audit.js";
import { inferView } from "./views/infer.js";
import { modelsView } from "./views/models.js";
import { routesView } from "./views/routes.js";
import { signInView } from "./views/signin.js";

// `permissions`: any one opens the page (as the API lets each read); a page offers its
// changes only to a role that may make them.
const PAGES = [
  { path: "infer", title: "Inference", permissions: ["infer"], view: inferView },
  { path: "models", title: "Models", permissions: ["models:manage", "audit:read"], view: modelsView },
  { path: "routes", title: "Routes", permissions: ["routes:manage", "audit:read"], view: routesView },
  { path: "audit", title: "Audit trail", permissions: ["audit:read"], view: auditView },
];

const opens = (role, page) => page.permissions.some((permission) => may(role, permission));

let leave = null; // the open page's clean-up (a page that polls stops here)

function header(who, current) {
  const nav = document.getElementById("nav");
  const whoBox = document.getElementById("who");
  const pages = who ? PAGES.filter((page) => opens(who.role, page)) : [];
  nav.replaceChildren(...pages.map((page) =>
    h("a", { href: `#/${page.path}`, "aria-current": page === current ? "page" : null }, page.title)));
  whoBox.replaceChildren(...(who ? [
    h("span", { id: "signed-in-as" }, `${who.sub} (${who.role})`),
    h("button", { type: "button", class: "secondary", id: "sign-out", onclick: () => leaveSession() }, "Sign out"),
  ] : []));
}

function leaveSession(message) {
  signOut();
  // NOTE: replaceState, not location.hash: a hashchange would render again, losing `message`.
  history.replaceState(null, "", `${location.pathname}#/`);
  render(message);
}

function denied(page, who) {
  return h("section", {},
    h("h1", {}, page.title),
    h("p", { id: "denied" },
      `This page needs the role ${[...new Set(page.permissions.flatMap(rolesWith))].sort().join(" or ")}; `,
      `you are signed in as ${who.sub} with the role ${who.role}.`));
}

function render(message) {
  if (leave) leave();
  leave = null;
  clearNotice();
  const main = document.getElementById("main");
  const who = person();
  if (!who) {
    header(null);
    main.replaceChildren(signInView((token) => {
      signIn(token);
      history.replaceState(null, "", `${location.pathname}#/`);
      render();
    }, message));
    return;
  }
  const allowed = PAGES.filter((p) => opens(who.role, p));
  const path = location.hash.replace(/^#\/?/, "");
  // Without a page named, a role's own page: the first it opens by its first permission.
  const page = PAGES.find((p) => p.path === path)
    ?? allowed.find((p) => may(who.role, p.permissions[0])) ?? allowed[0];
  header(who, page);
  if (!page) {
    main.replaceChildren(h("p", {}, `The role ${who.role} opens no page of this console.`));
    return;
  }
  if (!opens(who.role, page)) {
    main.replaceChildren(denied(page, who));
    return;
  }
  document.title = `${page.title} · MedAI Flow console`;
  const section = h("section", { "aria-labelledby": "page-title" });
  main.replaceChildren(section);
  leave = page.view(section, who, config()) ?? null;
}

async function start() {
  onUnauthorized((error) => leaveSession(`Signed out: ${error.detail}. Sign in again.`));
  try {
    await loadConfig();
  } catch (error) {
    fail(error);
    return;
  }
  window.addEventListener("hashchange", () => {
    render(adoptLink());
    document.getElementById("main").focus(); // a keyboard or screen-reader user starts at the page
  });
  render(adoptLink());
}

/** Sign in with a link's token (on load, or pasted into an open tab's address bar). */
function adoptLink() {
  const linked = takeTokenFromLink();
  if (!linked) return undefined;
  try {
    signIn(linked);
    return undefined;
  } catch (error) {
    return `The sign-in link's token was refused: ${error.message}.`;
  }
}

start();
