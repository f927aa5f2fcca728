// A modal confirmation naming what will change; resolves true only on the confirm button.
// <dialog> gives focus trapping and Escape (as cancel) for free.

import { h } from "../dom.js";

export function confirmChange(title, consequence, action) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { id: "confirm", "aria-labelledby": "confirm-title", "aria-describedby": "confirm-text" },
      h("h2", { id: "confirm-title" }, title),
      h("p", { id: "confirm-text" }, consequence),
      h("form", { method: "dialog", class: "row" },
        h("button", { type: "submit", value: "cancel", class: "secondary", id: "confirm-cancel" }, "Cancel"),
        h("button", { type: "submit", value: "confirm", id: "confirm-ok" }, action)));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
