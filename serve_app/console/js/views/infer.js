// The clinician's page: send an image, see the answer beside the image, read results back.

import { api } from "../api.js";
import { field, h, percent, table, when } from "../dom.js";
import { clearNotice, fail } from "../notice.js";

const RECENT = 10;
// NOTE: patient ids are PHI: the server keeps only pseudonyms, and this page keeps the ids
// typed in this tab in memory only (never in storage), to show beside their answers.
const patientIds = new Map();

/** The image as the answering model saw it (decoded, DICOM windowed, at its size). */
async function picture(file, answer) {
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", `${answer.model_name}:${answer.model_version}`);
  if (answer.frames) form.append("frame", String(answer.frame));
  let seen;
  try {
    seen = await api("POST", "/preview", { form, blob: true });
  } catch (error) {
    return h("p", { id: "answer-image-note", class: "panel" }, `The image could not be drawn: ${error.detail ?? error.message}.`);
  }
  const frame = answer.frames > 1 ? `, frame ${answer.frame + 1} of ${answer.frames}` : "";
  return h("figure", {},
    h("img", { id: "answer-image", src: URL.createObjectURL(seen), alt: `${file.name} as the model saw it${frame}` }),
    h("figcaption", { class: "hint", id: "answer-image-caption" },
      `As ${answer.model_name} ${answer.model_version} saw it${frame}: decoded, windowed and resized to its input.`));
}

function answerPanel(answer, seen, patientId) {
  const rows = answer.labels.map((label, i) =>
    h("tr", {}, h("td", {}, label), h("td", {}, percent(answer.outputs[i]))));
  return h("div", { class: "panel", id: "answer", "aria-live": "polite" },
    h("h2", {}, "Answer"),
    h("div", { class: "answer" },
      seen,
      h("div", {},
        h("p", { class: "big", id: "answer-label" }, answer.prediction),
        h("dl", { class: "facts" },
          h("dt", {}, "Confidence (positive class)"), h("dd", { id: "answer-confidence" }, percent(answer.confidence_score)),
          h("dt", {}, "Threshold"), h("dd", {}, String(answer.threshold)),
          h("dt", {}, "Model"), h("dd", { id: "answer-model" }, `${answer.model_name}:${answer.model_version}`),
          answer.endpoint ? [h("dt", {}, "Endpoint (arm)"), h("dd", {}, `${answer.endpoint} (${answer.arm})`)] : null,
          patientId ? [h("dt", {}, "Patient id"), h("dd", { id: "answer-patient" }, patientId)] : null,
          h("dt", {}, "Latency"), h("dd", {}, `${answer.latency_ms.toFixed(1)} ms`),
          h("dt", {}, "Inference id"), h("dd", {}, h("code", {}, answer.inference_id))),
        table(["label", "probability"], rows))));
}

async function recentTable() {
  let results;
  try {
    results = await api("GET", "/results", { query: { limit: RECENT } });
  } catch (error) {
    fail(error, "results:read-own");
    return h("p", { class: "hint" }, "Your results could not be read.");
  }
  const rows = results.map((item) => h("tr", {},
    h("td", {}, when(item.created_at)),
    h("td", {}, h("code", {}, item.inference_id)),
    h("td", {}, `${item.model_name}:${item.model_version}`),
    h("td", {}, item.prediction),
    h("td", {}, percent(item.confidence)),
    h("td", { class: "patient" }, patientIds.get(item.inference_id) ?? item.patient_ref ?? "")));
  return rows.length
    ? table(["when", "inference id", "model", "prediction", "confidence", "patient"], rows,
      `Your ${RECENT} newest results. Patients show as stored pseudonyms; ids typed in this tab show until it reloads.`)
    : h("p", { class: "hint" }, "You have no stored results yet.");
}

function lookUp() {
  const input = h("input", { id: "lookup-id", pattern: "[A-Za-z0-9-]{1,64}", required: true });
  const out = h("div", { id: "lookup-result" });
  const form = h("form", {
    class: "row",
    onsubmit: async (event) => {
      event.preventDefault();
      clearNotice();
      try {
        const found = await api("GET", `/results/${encodeURIComponent(input.value)}`);
        out.replaceChildren(h("dl", { class: "facts" },
          h("dt", {}, "Prediction"), h("dd", {}, found.prediction),
          h("dt", {}, "Model"), h("dd", {}, `${found.model_name}:${found.model_version}`),
          h("dt", {}, "Confidence"), h("dd", {}, percent(found.confidence)),
          h("dt", {}, "Asked by"), h("dd", {}, found.requested_by),
          h("dt", {}, "Patient pseudonym"), h("dd", {}, found.patient_ref ?? "—"),
          h("dt", {}, "Stored"), h("dd", {}, when(found.created_at))));
      } catch (error) {
        out.replaceChildren();
        fail(error, "results:read-own");
      }
    },
  }, field("Inference id", input), h("button", { type: "submit" }, "Look up"));
  return [form, out];
}

export function inferView(section, who, settings) {
  let file = null;
  const fileInput = h("input", { id: "file", type: "file", accept: ".png,.jpg,.jpeg,.dcm,image/png,image/jpeg,application/dicom" });
  const chosen = h("p", { id: "chosen", class: "hint" }, "No file chosen.");
  const choose = (picked) => {
    file = picked ?? null;
    chosen.textContent = file ? `Chosen: ${file.name} (${file.size} bytes)` : "No file chosen.";
  };
  fileInput.addEventListener("change", () => choose(fileInput.files[0]));
  const drop = h("div", {
    class: "drop", id: "drop", tabindex: "0", role: "button",
    "aria-label": "Drop a PNG, JPEG or DICOM file here, or press Enter to choose one",
    ondragover: (event) => { event.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (event) => { event.preventDefault(); drop.classList.remove("over"); choose(event.dataTransfer.files[0]); },
    onclick: () => fileInput.click(),
    onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); fileInput.click(); } },
  }, "Drop a PNG, JPEG or DICOM file here, or click to choose one.");
  const model = h("input", { id: "model", list: "model-names", autocomplete: "off", placeholder: settings.default_model });
  const names = h("datalist", { id: "model-names" }, settings.models.map((name) => h("option", { value: name })));
  const patient = h("input", { id: "patient-id", maxlength: "128", autocomplete: "off" });
  const result = h("div", { id: "result" });
  const recentBox = h("div", { id: "recent" }, h("p", { class: "hint" }, "Loading your results…"));
  let reads = 0; // only the latest read is shown, whichever answers first
  const showRecent = async () => {
    const read = ++reads;
    const shown = await recentTable();
    if (read === reads) recentBox.replaceChildren(shown);
  };
  showRecent();
  const submit = h("button", { type: "submit", id: "run" }, "Run inference");
  const form = h("form", {
    id: "infer-form",
    onsubmit: async (event) => {
      event.preventDefault();
      clearNotice();
      if (!file) {
        fail(new Error("choose a PNG, JPEG or DICOM file first"));
        return;
      }
      const body = new FormData();
      body.append("file", file, file.name);
      if (model.value.trim()) body.append("model", model.value.trim());
      if (patient.value) body.append("patient_id", patient.value);
      submit.disabled = true;
      try {
        const answer = await api("POST", "/infer/file", { form: body });
        if (patient.value) patientIds.set(answer.inference_id, patient.value);
        result.replaceChildren(answerPanel(answer, await picture(file, answer), patient.value));
        await showRecent();
      } catch (error) {
        result.replaceChildren();
        fail(error, "infer");
      } finally {
        submit.disabled = false;
      }
    },
  },
  drop, field("Image file", fileInput), chosen,
  field("Model or endpoint", model, `name or name:version; empty for the default (${settings.default_model}).`), names,
  field("Patient id (optional, stored only as a pseudonym)", patient),
  h("p", {}, submit));
  section.replaceChildren(
    h("h1", { id: "page-title" }, "Inference"), form, result,
    h("h2", {}, "Recent results"), recentBox,
    h("h2", {}, "Read a stored result"), ...lookUp());
}
