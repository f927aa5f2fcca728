import { h } from "../dom.js";

export function signInView(onToken, message) {
  const input = h("input", {
    id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    "aria-describedby": "token-hint",
  });
  const problem = h("p", { id: "sign-in-problem", class: "notice", role: "alert", hidden: !message }, message ?? "");
  const form = h("form", {
    id: "sign-in",
    onsubmit: (event) => {
      event.preventDefault();
      try {
        onToken(input.value);
      } catch (error) {
        problem.textContent = `That token was not accepted: ${error.message}.`;
        problem.hidden = false;
        input.focus();
      }
    },
  },
  h("label", { for: "token" }, "Bearer token"),
  input,
  h("p", { class: "hint", id: "token-hint" },
    "Paste the token your organisation issued. In development, `medai token --sub you --role clinician --link` ",
    "prints a link that signs you in. The token stays in this tab and is forgotten when you sign out or close it."),
  h("button", { type: "submit" }, "Sign in"));
  setTimeout(() => input.focus());
  return h("section", { "aria-labelledby": "page-title" },
    h("h1", { id: "page-title" }, "Sign in"), problem, form);
}
