// The ML engineer's models: versions with status and hash, registering an upload, and
// promoting or rolling back after a confirmation that names what will change.

import { api } from "../api.js";
import { field, h, table, when } from "../dom.js";
import { may } from "../config.js";
import { clearNotice, fail, say } from "../notice.js";
import { confirmChange } from "./confirm.js";

const MANAGE = "models:manage";

function production(versions, name) {
  return versions.find((v) => v.model_name === name && v.status === "production");
}

function consequence(versions, v, to) {
  const moving = `${v.model_name} ${v.version} moves from ${v.status} to ${to}.`;
  if (to !== "production") {
    return v.status === "production" ? `${moving} ${v.model_name} will have no production version.` : moving;
  }
  const current = production(versions, v.model_name);
  return current
    ? `${moving} ${v.model_name} ${current.version} (production now) will be retired, and ${v.version} will answer ${v.model_name}'s requests.`
    : `${moving} It will answer ${v.model_name}'s requests.`;
}

function actions(versions, v, settings, reload) {
  const moves = settings.promotions[v.status] ?? [];
  const controls = [];
  if (moves.length) {
    const id = `promote-${v.model_name}-${v.version}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const select = h("select", { id, "aria-label": `New status of ${v.model_name} ${v.version}` },
      moves.map((to) => h("option", { value: to }, to)));
    controls.push(select, h("button", {
      type: "button", "data-action": "promote",
      onclick: async () => {
        const to = select.value;
        if (!(await confirmChange(`Promote ${v.model_name} ${v.version} to ${to}?`, consequence(versions, v, to), `Promote to ${to}`))) return;
        try {
          await api("POST", `/models/${encodeURIComponent(v.model_name)}/${encodeURIComponent(v.version)}/promote`, { json: { to } });
          say(`${v.model_name} ${v.version} is now ${to}.`);
          reload();
        } catch (error) {
          fail(error, MANAGE);
        }
      },
    }, "Promote"));
  }
  const current = production(versions, v.model_name);
  if (current && settings.rollback_from.includes(v.status)) {
    controls.push(h("button", {
      type: "button", class: "secondary", "data-action": "rollback",
      onclick: async () => {
        const text = `${v.model_name} ${current.version} (production now) will be retired, and ${v.version} (${v.status}) will answer ${v.model_name}'s requests again.`;
        if (!(await confirmChange(`Roll ${v.model_name} back to ${v.version}?`, text, "Roll back"))) return;
        try {
          await api("POST", `/models/${encodeURIComponent(v.model_name)}/rollback`, { json: { to_version: v.version } });
          say(`${v.model_name} rolled back to ${v.version}.`);
          reload();
        } catch (error) {
          fail(error, MANAGE);
        }
      },
    }, `Roll back to ${v.version}`));
  }
  return h("div", { class: "row" }, controls);
}

function versionTables(versions, settings, reload) {
  const names = [...new Set(versions.map((v) => v.model_name))];
  if (!names.length) return h("p", { class: "hint" }, "No models registered.");
  return names.map((name) => h("section", { "data-model": name },
    h("h2", {}, name),
    table(["version", "status", "SHA-256", "size", "input", "registered", ""],
      versions.filter((v) => v.model_name === name).map((v) => h("tr", { "data-version": v.version },
        h("td", {}, v.version),
        h("td", { class: "status" }, v.status),
        h("td", {}, h("code", { class: "hash" }, v.file_hash)),
        h("td", {}, `${(v.file_size_bytes / 1024).toFixed(1)} KiB`),
        h("td", {}, JSON.stringify(v.input_shape)),
        h("td", {}, when(v.created_at)),
        h("td", {}, settings ? actions(versions, v, settings, reload) : null))))));
}

function registerForm(reload) {
  const file = h("input", { id: "register-file", type: "file", accept: ".onnx", required: true });
  const name = h("input", { id: "register-name", required: true, autocomplete: "off" });
  const version = h("input", { id: "register-version", required: true, autocomplete: "off" });
  const domain = h("input", { id: "register-domain", autocomplete: "off" });
  return h("form", {
    id: "register-form", class: "panel",
    onsubmit: async (event) => {
      event.preventDefault();
      clearNotice();
      const body = new FormData();
      body.append("file", file.files[0]);
      body.append("name", name.value);
      body.append("version", version.value);
      if (domain.value) body.append("clinical_domain", domain.value);
      try {
        const made = await api("POST", "/models", { form: body });
        say(`Registered ${made.model_name} ${made.version} as ${made.status} (SHA-256 ${made.file_hash}).`);
        reload();
      } catch (error) {
        fail(error, MANAGE);
      }
    },
  },
  h("h2", {}, "Register a version"),
  field("ONNX file", file),
  h("div", { class: "row" }, field("Name", name), field("Version", version), field("Clinical domain (optional)", domain)),
  h("p", {}, h("button", { type: "submit" }, "Register")));
}

export function modelsView(section, who, settings) {
  const manages = may(who.role, MANAGE);
  const list = h("div", { id: "models" }, h("p", {}, "Loading…"));
  async function reload() {
    try {
      const versions = await api("GET", "/models");
      list.replaceChildren(...[versionTables(versions, manages ? settings : null, reload)].flat());
    } catch (error) {
      list.replaceChildren();
      fail(error, MANAGE);
    }
  }
  section.replaceChildren(...[h("h1", { id: "page-title" }, "Models"), manages && registerForm(reload), list].filter(Boolean));
  reload();
}
