// The "Your data" view: who opened my chats, the archive (export and
// import), personal API keys where the gateway has them, and deleting
// everything.
import { request, optional, errorFrom, ApiError } from "./api.js";
import { el, dateTime, confirmDialog, copyText, flash, announce } from "./ui.js";

const actions = {
  "session.list": "looked at the list of your conversations",
  "session.read": "opened a conversation of yours",
  "export": "exported all your conversations",
  "share.grant": "shared a conversation",
  "share.revoke": "stopped sharing a conversation",
  "shared.read": "read a conversation you share",
};

// renderData fills the view. ctx gives the signed-in email, the session
// titles the page knows, and callbacks into the page.
export async function renderData(root, ctx) {
  const audit = el("section", { class: "card", "aria-labelledby": "audit-h" },
    el("h2", { id: "audit-h", text: "Who opened my chats" }),
    el("p", { class: "muted", text: "Whenever anyone uses the gateway's admin or sharing routes on your conversations, it is recorded here. Entries stay, even when you delete your data." }),
    el("p", { class: "muted", text: "Loading…" }));
  const keys = el("section", { class: "card", id: "keys", hidden: true, "aria-labelledby": "keys-h" });
  root.replaceChildren(
    audit,
    archiveCard(ctx),
    keys,
    deleteCard(ctx),
  );
  const [events, keyList] = await Promise.all([
    request("GET", "/api/me/audit").then((r) => r.events, (err) => err),
    optional("/api/me/keys").catch(() => null),
  ]);
  audit.lastChild.replaceWith(auditList(events, ctx));
  if (keyList) renderKeys(keys, keyList.keys || []);
}

function auditList(events, ctx) {
  if (events instanceof Error) return el("p", { class: "error", text: `The record could not be loaded: ${events.message}` });
  if (!events.length) return el("p", { class: "empty", text: "Nobody has opened your conversations." });
  return el("ul", { class: "audit" }, ...events.map((e) => {
    const who = e.actor === ctx.email ? "You" : e.actor;
    const title = e.sessionId ? ctx.titleOf(e.sessionId) : "";
    return el("li", {},
      el("time", { datetime: e.time, text: dateTime(e.time) }),
      el("span", { text: ` ${who} ${actions[e.action] || e.action}${title ? `: “${title}”` : ""}` }));
  }));
}

function archiveCard(ctx) {
  const result = el("p", { class: "result", role: "status" });
  const exportBtn = el("button", { type: "button", id: "export", text: "Download my conversations" });
  exportBtn.addEventListener("click", async () => {
    exportBtn.disabled = true;
    result.textContent = "Preparing your archive…";
    try {
      const n = await downloadExport();
      result.textContent = `Downloaded ${n} conversation${n === 1 ? "" : "s"}.`;
    } catch (err) {
      result.textContent = `The download failed: ${err.message}`;
    } finally {
      exportBtn.disabled = false;
    }
  });
  const file = el("input", { type: "file", id: "import-file", accept: ".jsonl,.ndjson,.json,application/x-ndjson,application/json", hidden: true });
  const importBtn = el("button", { type: "button", id: "import", text: "Import a file…", onclick: () => file.click() });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    file.value = "";
    if (!f) return;
    result.textContent = `Importing ${f.name}…`;
    try {
      const r = await request("POST", "/api/me/import", { raw: await asJSONL(f), contentType: "application/x-ndjson" });
      result.textContent = `Imported ${r.imported} conversation${r.imported === 1 ? "" : "s"}.`;
      announce(result.textContent);
      await ctx.reloadSessions();
    } catch (err) {
      result.textContent = `The import stopped: ${err.message}`;
      await ctx.reloadSessions();
    }
  });
  return el("section", { class: "card", "aria-labelledby": "archive-h" },
    el("h2", { id: "archive-h", text: "Your archive" }),
    el("p", { class: "muted", text: "Download every conversation as a file you keep, and bring one back later — here or on another gateway. Conversations keep their dates; one that is already here is not imported twice." }),
    el("div", { class: "row" },
      exportBtn,
      importBtn, file),
    result);
}

// downloadExport fetches the archive as JSON Lines (the form import reads)
// and saves it; it returns how many conversations it holds.
async function downloadExport() {
  const resp = await fetch("/api/me/export?format=jsonl", { headers: { Accept: "application/x-ndjson" } });
  if (!resp.ok) throw await errorFrom(resp);
  const blob = await resp.blob();
  const text = await blob.text();
  const n = text.split("\n").filter((l) => l.trim()).length;
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: `conversations-${new Date().toISOString().slice(0, 10)}.jsonl`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return n;
}

// asJSONL accepts the JSON export too (one document with a sessions
// array) and sends it as the lines import reads.
async function asJSONL(file) {
  const text = await file.text();
  const head = text.trimStart();
  if (head.startsWith("{") && head.includes("\"sessions\"")) {
    try {
      const doc = JSON.parse(text);
      if (Array.isArray(doc.sessions)) return doc.sessions.map((s) => JSON.stringify(s)).join("\n") + "\n";
    } catch (_) { /* JSON Lines after all */ }
  }
  return text;
}

function deleteCard(ctx) {
  const result = el("p", { class: "result", role: "status" });
  const btn = el("button", { type: "button", id: "delete-all", class: "danger", text: "Delete all my data…" });
  btn.addEventListener("click", async () => {
    const sessions = await ctx.allSessions();
    const titles = sessions.slice(0, 5).map((s) => el("li", { text: s.title || "Untitled" }));
    if (sessions.length > 5) titles.push(el("li", { text: `and ${sessions.length - 5} more` }));
    const n = sessions.length;
    const exportFirst = el("button", { type: "button", text: "Download them first" });
    exportFirst.addEventListener("click", async () => {
      try { await downloadExport(); flash(exportFirst, "Downloaded"); } catch (err) { flash(exportFirst, "Download failed"); }
    });
    const ok = await confirmDialog({
      title: "Delete all your data?",
      body: [
        el("p", { text: n ? `This deletes, for good, your ${n} conversation${n === 1 ? "" : "s"} with every message in them:` : "You have no conversations now. This deletes the key that would encrypt new ones." }),
        n ? el("ul", { class: "titles" }, ...titles) : null,
        el("p", { text: "and the key that encrypts them, so they cannot be read again, even from the gateway's database." }),
        el("p", { class: "muted", text: "What stays: your usage record (requests, tokens and cost per model — never what was said) and the record of who opened your chats. Backups made before now still hold your conversations." }),
      ].filter(Boolean),
      confirm: n ? `Delete ${n} conversation${n === 1 ? "" : "s"} and my key` : "Delete my key",
      danger: true,
      extra: n ? exportFirst : null,
    });
    if (!ok) return;
    try {
      await request("DELETE", "/api/me/data");
      result.textContent = n ? `Deleted ${n} conversation${n === 1 ? "" : "s"} and your key.` : "Deleted your key.";
      announce(result.textContent);
      await ctx.afterErase();
    } catch (err) {
      result.textContent = `Nothing was deleted: ${err.message}`;
    }
  });
  return el("section", { class: "card", "aria-labelledby": "delete-h" },
    el("h2", { id: "delete-h", text: "Delete everything" }),
    el("p", { class: "muted", text: "Erase all your conversations and the key that encrypts them. You will be asked to confirm, with the list of what goes." }),
    btn, result);
}

// Personal API keys, shown only when the gateway serves /api/me/keys
// (see the contract in docs). A new key is shown once.
function renderKeys(root, keys) {
  const list = el("ul", { class: "keys" });
  const fresh = el("div", { class: "fresh-key", hidden: true });
  const draw = (items) => {
    list.replaceChildren(...(items.length ? items.map((k) => {
      const revoke = el("button", { type: "button", class: "danger small", text: "Revoke" });
      revoke.addEventListener("click", async () => {
        const ok = await confirmDialog({ title: `Revoke “${k.name}”?`, body: [`Programs using the key that starts ${k.prefix} stop working at once.`], confirm: "Revoke key", danger: true });
        if (!ok) return;
        try {
          await request("DELETE", `/api/me/keys/${encodeURIComponent(k.id)}`);
          draw(items.filter((x) => x.id !== k.id));
        } catch (err) { flash(revoke, err.message); }
      });
      return el("li", {},
        el("strong", { text: k.name }), " ", el("code", { text: `${k.prefix}…` }),
        el("span", { class: "muted small", text: ` created ${dateTime(k.createdAt)}${k.lastUsedAt ? `, last used ${dateTime(k.lastUsedAt)}` : ", never used"}` }),
        " ", revoke);
    }) : [el("li", { class: "empty", text: "No keys yet." })]));
  };
  draw(keys);
  const name = el("input", { id: "key-name", type: "text", maxlength: 100, required: true, placeholder: "Laptop" });
  const form = el("form", { class: "row" }, el("label", { for: "key-name", text: "Name" }), name, el("button", { type: "submit", text: "Create key" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const k = await request("POST", "/api/me/keys", { body: { name: name.value.trim() } });
      name.value = "";
      const copy = el("button", { type: "button", text: "Copy key" });
      copy.addEventListener("click", async () => flash(copy, (await copyText(k.key)) ? "Copied" : "Copy failed"));
      fresh.replaceChildren(el("p", { text: "Your new key. Copy it now: it will not be shown again." }), el("code", { class: "secret", text: k.key }), copy);
      fresh.hidden = false;
      keys = [...keys, k];
      draw(keys);
    } catch (err) {
      fresh.replaceChildren(el("p", { class: "error", text: err instanceof ApiError ? err.message : String(err) }));
      fresh.hidden = false;
    }
  });
  root.replaceChildren(
    el("h2", { id: "keys-h", text: "Personal API keys" }),
    el("p", { class: "muted", text: "Use the gateway from your own programs (the OpenAI and Anthropic SDKs) as yourself: your quota, your usage, your conversations." }),
    form, fresh, list);
  root.hidden = false;
}
