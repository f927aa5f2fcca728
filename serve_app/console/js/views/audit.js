// The auditor's trail: a page at a time, oldest first, filtered by action and actor; and
// "verify", which recomputes the chain against the signed checkpoints.

import { api } from "../api.js";
import { field, h, table, when } from "../dom.js";
import { clearNotice, fail } from "../notice.js";

const PAGE = 100;
const READ = "audit:read";

function verdict(result) {
  return h("div", { class: "panel", id: "verification", "aria-live": "polite" },
    h("p", { class: `verdict ${result.valid ? "valid" : "broken"}`, id: "verdict" },
      result.valid ? "Valid: the chain and its checkpoints agree." : "Broken: the trail does not verify."),
    h("dl", { class: "facts" },
      h("dt", {}, "Valid"), h("dd", { id: "verify-valid" }, result.valid ? "yes" : "no"),
      h("dt", {}, "Entries"), h("dd", { id: "verify-entries" }, String(result.entries)),
      h("dt", {}, "Head hash"), h("dd", {}, h("code", { id: "verify-head" }, result.head_hash)),
      h("dt", {}, "First bad seq"), h("dd", { id: "verify-first-bad" }, result.first_bad_seq ?? "none"),
      h("dt", {}, "Checkpoint seq"), h("dd", { id: "verify-checkpoint" }, result.checkpoint_seq ?? "none"),
      h("dt", {}, "Entries after it"), h("dd", {}, String(result.unsigned_entries)),
      result.reason ? [h("dt", {}, "Reason"), h("dd", {}, result.reason)] : null));
}

export function auditView(section) {
  const starts = [0]; // after_seq of each page read so far: the way back
  let nextAfter = null;
  let entries = [];
  const action = h("input", { id: "filter-action", list: "audit-actions", autocomplete: "off" });
  const actions = h("datalist", { id: "audit-actions" });
  const actor = h("input", { id: "filter-actor", autocomplete: "off" });
  const box = h("div", { id: "trail" });
  const where = h("p", { class: "hint", id: "trail-page" });
  const older = h("button", { type: "button", class: "secondary", id: "page-back" }, "Previous page");
  const newer = h("button", { type: "button", class: "secondary", id: "page-next" }, "Next page");
  const verification = h("div", { id: "verify-result" });

  function show() {
    const wantAction = action.value.trim();
    const wantActor = actor.value.trim();
    const shown = entries.filter((e) => (!wantAction || e.action === wantAction) && (!wantActor || e.actor === wantActor));
    actions.replaceChildren(...[...new Set(entries.map((e) => e.action))].sort().map((a) => h("option", { value: a })));
    box.replaceChildren(shown.length
      ? table(["seq", "time", "actor", "role", "action", "object", "details", "entry hash"], shown.map((e) => h("tr", { "data-seq": e.seq },
        h("td", {}, String(e.seq)), h("td", {}, when(e.timestamp)), h("td", { class: "actor" }, e.actor),
        h("td", {}, e.role ?? "—"), h("td", { class: "action" }, e.action),
        h("td", {}, `${e.object_type}${e.object_id ? ` ${e.object_id}` : ""}`),
        h("td", {}, h("code", {}, JSON.stringify(e.details))),
        h("td", {}, h("code", { class: "hash", title: e.entry_hash }, `${e.entry_hash.slice(0, 12)}…`)))))
      : h("p", { class: "hint" }, "No entries on this page match."));
    const first = entries[0]?.seq;
    const last = entries[entries.length - 1]?.seq;
    where.textContent = entries.length
      ? `Entries ${first} to ${last} (${shown.length} of ${entries.length} shown); the filters apply to this page.`
      : "No entries.";
    older.disabled = starts.length < 2;
    newer.disabled = nextAfter === null;
  }

  async function read(afterSeq) {
    clearNotice();
    try {
      const page = await api("GET", "/audit", { query: { after_seq: afterSeq, limit: PAGE } });
      entries = page.entries;
      nextAfter = page.next_after_seq;
      show();
    } catch (error) {
      fail(error, READ);
    }
  }

  older.addEventListener("click", () => { starts.pop(); read(starts[starts.length - 1]); });
  newer.addEventListener("click", () => { starts.push(nextAfter); read(nextAfter); });
  action.addEventListener("input", show);
  actor.addEventListener("input", show);
  const verify = h("button", {
    type: "button", id: "verify",
    onclick: async () => {
      clearNotice();
      verify.disabled = true;
      try {
        verification.replaceChildren(verdict(await api("GET", "/audit/verify")));
      } catch (error) {
        fail(error, READ);
      } finally {
        verify.disabled = false;
      }
    },
  }, "Verify the trail");

  section.replaceChildren(
    h("h1", { id: "page-title" }, "Audit trail"),
    h("p", {}, verify), verification,
    h("h2", {}, "Entries"),
    h("div", { class: "row" }, field("Action", action), actions, field("Actor", actor)),
    where, h("div", { class: "row" }, older, newer), box);
  read(0);
}
