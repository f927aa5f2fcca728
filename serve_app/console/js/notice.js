// The one place messages show: errors with the server's own detail, and confirmations.

import { ApiError } from "./api.js";
import { rolesWith } from "./config.js";

const box = () => document.getElementById("notice");

export function clearNotice() {
  box().hidden = true;
  box().textContent = "";
}

export function say(message) {
  box().className = "notice ok";
  box().setAttribute("role", "status");
  box().textContent = message;
  box().hidden = false;
}

/** Explain what failed: the problem's `detail`; for a 403, which roles may do it. */
export function describe(error, permission) {
  if (!(error instanceof ApiError)) return String(error.message ?? error);
  if (error.status === 403 && permission) {
    return `Not allowed (403): ${error.detail}. This needs the role ${rolesWith(permission).join(" or ")}.`;
  }
  return error.status ? `Error ${error.status}: ${error.detail}` : error.detail;
}

export function fail(error, permission) {
  box().className = "notice";
  box().setAttribute("role", "alert");
  box().textContent = describe(error, permission);
  box().hidden = false;
}
