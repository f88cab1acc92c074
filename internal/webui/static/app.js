// The chat page. Every request goes to the page's own origin; OAuth2 Proxy
// adds the signed-in person's identity and the gateway token on the way in.
//
// What the page can do follows what the gateway answers: routes it does not
// serve yet (GET /api/me for features, GET /api/models for prices and
// capabilities, GET /api/me/keys) answer 404 and their controls stay hidden.
import { request, optional, errorFrom, streamEvents, ApiError } from "./js/api.js";
import { render, Streamed } from "./js/markdown.js";
import { $, el, dollars, count, whenAt, fold, announce, confirmDialog, copyText, flash, privacySentence } from "./js/ui.js";
import { renderUsage, quotaSummary, quotaFraction } from "./js/usage.js";
import { renderData } from "./js/data.js";

const AUTO = "auto";

// The picked model is remembered in the browser; storage may be refused.
const remembered = {
  get: () => { try { return localStorage.getItem("model"); } catch (_) { return null; } },
  set: (v) => { try { localStorage.setItem("model", v); } catch (_) { /* not kept */ } },
};

const state = {
  email: "",
  features: {},        // GET /api/me features, when the gateway has the route
  models: [],          // [{id, routed, kind, input, pricing}]
  sessions: [],        // the person's sessions, most recent first
  next: "",            // cursor of the next page of sessions
  session: null,       // the open session
  live: null,          // the turn being streamed: {controller, reply, ...}
  retry: null,         // what "Try again" does
  usage: null,
  attachment: null,    // {file, mediaType, data} waiting to be sent
};

// ---------- start ----------

async function start() {
  wire();
  const results = await Promise.allSettled([
    optional("/oauth2/userinfo").then((u) => { if (u) state.email = u.email || u.user || ""; }),
    optional("/api/me").then((me) => {
      if (!me) return;
      state.features = me.features || {};
      if (me.email) state.email = me.email;
      if (me.privacy) drawPrivacy(me.privacy);
    }),
    loadModels(),
    loadSessions(),
    loadUsage(),
  ]);
  if (state.models.length) drawModels();
  const failed = results.find((r) => r.status === "rejected");
  if (failed) showError(failed.reason, () => location.reload());
  $("who").textContent = state.email;
  await route();
  document.body.classList.add("ready");
}

function drawPrivacy(p) {
  $("privacy").replaceChildren(`${privacySentence(p)} `, el("a", { href: "/static/privacy.html", text: "Who can read them" }));
}

// ---------- routing ----------

// Views: #/ (a new chat), #/c/<id> (a conversation), #/usage, #/data.
async function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  closeDrawer();
  if (hash === "usage") return showView("usage");
  if (hash === "data") return showView("data");
  showView("chat");
  const m = /^c\/(.+)$/.exec(hash);
  if (m) {
    const id = decodeURIComponent(m[1]);
    if (!state.session || state.session.id !== id) await openSession(id);
  } else if (state.session || !hash) {
    newChat();
  }
}

function showView(name) {
  for (const v of ["chat", "usage", "data"]) $(`${v}-view`).hidden = v !== name;
  for (const a of document.querySelectorAll("[data-view]")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (name === "usage") {
    document.title = "Usage · Chat";
    if (state.usage) renderUsage($("usage-body"), state.usage);
    loadUsage();
  } else if (name === "data") {
    document.title = "Your data · Chat";
    renderData($("data-body"), dataContext()).catch((err) => showError(err));
  } else {
    document.title = state.session ? `${state.session.title || "Untitled"} · Chat` : "Chat";
  }
  if (name !== "chat") $(`${name}-view`).querySelector("h1").focus();
}

function go(hash) {
  if (location.hash !== hash) history.pushState(null, "", hash);
}

// ---------- models ----------

async function loadModels() {
  // GET /api/models adds prices and what each model takes; without it the
  // OpenAI-style list gives the names.
  const rich = await optional("/api/models");
  if (rich && Array.isArray(rich.models)) {
    state.models = rich.models;
  } else {
    const list = await request("GET", "/v1/models");
    state.models = list.data.map((m) => ({ id: m.id, routed: m.id === AUTO }));
  }
  drawModels();
}

// drawModels fills the picker. Until the person picks one, a new chat
// gets the model of their latest conversation, or, for their first, the
// gateway's default (which the session it creates then names).
function drawModels() {
  const select = $("model");
  const known = (id) => id && state.models.some((m) => m.id === id);
  const preferred = [remembered.get(), state.session && state.session.model, state.sessions[0] && state.sessions[0].model,
    (state.models.find((m) => m.default) || {}).id].find(known);
  const options = state.models.map((m) => el("option", { value: m.id, text: modelLabel(m) }));
  if (!preferred) options.unshift(el("option", { value: "", text: "The gateway's default model" }));
  select.replaceChildren(...options);
  select.value = preferred || "";
  modelChanged();
}

function modelLabel(m) {
  if (m.routed) return `${m.id} — picks a model for each message`;
  const p = m.pricing;
  if (m.kind === "image" && p && p.perImageUSD) return `${m.id} — pictures, from ${dollars(p.perImageUSD)} each`;
  if (p && p.inputPerMTok) return `${m.id} — ${dollars(p.inputPerMTok)} in, ${dollars(p.outputPerMTok)} out per million tokens`;
  return m.id;
}

const modelInfo = (id) => state.models.find((m) => m.id === id) || { id };

function modelChanged() {
  const m = modelInfo($("model").value);
  $("input").placeholder = m.kind === "image" ? "Describe a picture" : "Message";
  updateAttach();
}

// ---------- sessions ----------

async function loadSessions() {
  const page = await request("GET", "/api/sessions?limit=100");
  state.sessions = page.sessions;
  state.next = page.next || "";
  renderSessions();
}

// allSessions loads every page: search and "delete all" need the whole list.
async function allSessions() {
  while (state.next) {
    const page = await request("GET", `/api/sessions?limit=500&cursor=${encodeURIComponent(state.next)}`);
    state.sessions.push(...page.sessions);
    state.next = page.next || "";
  }
  return state.sessions;
}

function renderSessions() {
  const q = fold($("search").value.trim());
  const shown = q ? state.sessions.filter((s) => fold(s.title || "Untitled").includes(q)) : state.sessions;
  const ul = $("sessions");
  ul.replaceChildren(...shown.map((s) => el("li", {},
    el("a", { href: `#/c/${encodeURIComponent(s.id)}`, "data-id": s.id, "aria-current": state.session && state.session.id === s.id ? "page" : null, text: s.title || "Untitled" }))));
  $("sessions-empty").hidden = shown.length > 0;
  $("sessions-empty").textContent = q ? "No conversation has that in its title." : "Your conversations will be listed here.";
  $("more-sessions").hidden = !state.next || !!q;
}

function markCurrent() {
  for (const a of $("sessions").querySelectorAll("a")) {
    if (state.session && a.dataset.id === state.session.id) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function touchSession(s) {
  state.sessions = [s, ...state.sessions.filter((x) => x.id !== s.id)];
  renderSessions();
}

async function openSession(id) {
  clearNotice();
  stopLive();
  let s;
  try {
    s = await request("GET", `/api/sessions/${encodeURIComponent(id)}`);
  } catch (err) {
    newChat();
    showError(err.status === 404 ? new ApiError(404, "That conversation no longer exists.") : err);
    return;
  }
  state.session = s;
  showHeader();
  const list = $("messages");
  list.replaceChildren(...(s.messages || []).map((m) => messageItem(m)));
  markActions();
  $("empty").hidden = list.children.length > 0;
  if (s.model && state.models.some((m) => m.id === s.model)) {
    $("model").value = s.model;
    modelChanged();
  }
  markCurrent();
  scrollToEnd(true);
}

function newChat() {
  clearNotice();
  stopLive();
  state.session = null;
  showHeader();
  $("messages").replaceChildren();
  $("empty").hidden = false;
  markCurrent();
  if (location.hash && location.hash !== "#/") go("#/");
}

function showHeader() {
  const s = state.session;
  $("title").textContent = s ? (s.title || "Untitled") : "New chat";
  $("title").hidden = false;
  $("title-form").hidden = true;
  $("rename").hidden = $("delete").hidden = !s;
  if (!$("chat-view").hidden) document.title = s ? `${s.title || "Untitled"} · Chat` : "Chat";
}

// ---------- messages ----------

// messageItem draws one stored or live message.
function messageItem(m, { model } = {}) {
  const mine = m.role === "user";
  const body = el("div", { class: mine ? "body plain" : "body markdown" });
  if (mine) body.textContent = m.content;
  else body.append(render(m.content));
  const li = el("li", { class: `msg ${m.role}`, "data-id": m.id || "", "data-status": m.status || "" },
    el("h2", { class: "who", text: mine ? "You" : (model || "Assistant") }),
    body,
    attachments(m),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "copy-msg", text: mine ? "Copy" : "Copy reply" })),
    el("p", { class: "meta" }));
  li.dataset.text = m.content;
  setStatus(li, m.status);
  if (!mine && m.outputTokens) li.querySelector(".meta").textContent = `${count(m.outputTokens)} tokens`;
  return li;
}

// attachments shows a message's pictures (the gateway's attachments
// contract; absent today).
function attachments(m) {
  if (!Array.isArray(m.attachments) || !m.attachments.length || !state.session) return null;
  return el("div", { class: "attachments" }, ...m.attachments.map((a) => {
    const url = `/api/sessions/${encodeURIComponent(state.session.id)}/attachments/${encodeURIComponent(a.id)}`;
    return el("figure", {},
      el("img", { src: url, alt: a.name || (m.role === "user" ? "Your picture" : "A generated picture"), loading: "lazy" }),
      el("figcaption", {}, el("a", { href: url, download: a.name || "picture.png", text: "Download" })));
  }));
}

const statusText = { incomplete: "Cut short", error: "No reply", streaming: "Still being written", stopped: "Stopped" };

function setStatus(li, status) {
  li.dataset.status = status || "";
  li.querySelector(".badge")?.remove();
  if (statusText[status]) li.querySelector(".who").after(el("p", { class: `badge ${status}`, text: statusText[status] }));
}

// markActions offers Regenerate on the last reply and Edit on what the
// person wrote, when the gateway can replace a turn (features.replace).
function markActions() {
  for (const b of document.querySelectorAll("#messages .edit, #messages .regenerate")) b.remove();
  if (!state.features.replace || state.live) return;
  const items = [...$("messages").children];
  for (const li of items) {
    if (li.classList.contains("user") && li.dataset.id) {
      li.querySelector(".actions").append(el("button", { type: "button", class: "edit", text: "Edit" }));
    }
  }
  const last = items[items.length - 1];
  if (last && last.classList.contains("assistant")) {
    last.querySelector(".actions").append(el("button", { type: "button", class: "regenerate", text: "Regenerate" }));
  }
}

// LiveReply draws a streamed reply at most once a frame, redrawing only
// its last Markdown block (markdown.js Streamed); end draws it whole.
class LiveReply {
  constructor(li) {
    this.li = li;
    this.view = new Streamed(li.querySelector(".body"));
    this.text = "";
    this.pending = false;
  }
  add(text) {
    this.text += text;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => this.flush());
  }
  flush() {
    if (!this.pending) return;
    this.pending = false;
    this.draw(() => this.view.update(this.text));
  }
  end() {
    this.pending = false;
    if (this.ended) return;
    this.ended = true;
    this.draw(() => this.view.finish(this.text));
  }
  draw(how) {
    const stick = nearEnd();
    how();
    this.li.dataset.text = this.text;
    if (stick) scrollToEnd();
  }
}

function nearEnd() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToEnd(force = false) {
  const s = $("scroller");
  if (force || nearEnd()) s.scrollTop = s.scrollHeight;
}

// ---------- sending ----------

// send runs one turn: create the session if needed, post the message, and
// render the reply as it streams. opts.replace names the user message the
// turn replaces (regenerate, edit), when the gateway supports it.
async function send(text, opts = {}) {
  clearNotice();
  const model = $("model").value;
  const attachment = opts.replace ? null : state.attachment;
  setBusy(true);
  const controller = new AbortController();
  state.live = { controller, stopped: false };
  markActions();
  let userLi = null, reply = null, live = null, sessionId = "";
  try {
    if (!state.session) {
      state.session = await request("POST", "/api/sessions", { body: model ? { model } : {} });
      state.session.messages = [];
      if (!model) drawModels(); // the gateway named its default
      go(`#/c/${encodeURIComponent(state.session.id)}`);
      showHeader();
      touchSession(state.session);
    }
    sessionId = state.session.id;
    if (opts.replace) removeFrom(opts.replace);
    userLi = messageItem({ role: "user", content: text });
    $("messages").append(userLi);
    $("empty").hidden = true;
    scrollToEnd(true);
    if (attachment) clearAttachment();

    const body = { content: text };
    if (model) body.model = model;
    if (opts.replace) body.replace = opts.replace;
    if (attachment) body.attachments = [{ type: "image", mediaType: attachment.mediaType, data: attachment.data, name: attachment.file.name }];
    const resp = await fetch(`/api/sessions/${encodeURIComponent(sessionId)}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    // The gateway keeps the message even when the turn fails before it
    // starts; where it says under which id, a retry can replace it.
    if (resp.headers.get("X-User-Message-Id")) userLi.dataset.id = resp.headers.get("X-User-Message-Id");
    if (!resp.ok) throw await errorFrom(resp);
    const shown = model || state.session.model;
    reply = messageItem({ role: "assistant", content: "", status: "streaming" }, { model: shown === AUTO ? "Assistant" : shown });
    reply.querySelector(".badge")?.remove();
    reply.classList.add("live");
    $("messages").append(reply);
    scrollToEnd(true);
    live = new LiveReply(reply);
    state.live.reply = reply;
    let cut = null;
    await streamEvents(resp, (name, data) => {
      if (name === "session") {
        userLi.dataset.id = data.userMessageId;
        reply.dataset.id = data.messageId;
        if (data.model && data.model !== AUTO) reply.querySelector(".who").textContent = data.model;
        if (data.droppedMessages > 0) markDropped(data.droppedMessages, userLi);
      } else if (name === "delta") {
        live.add(data.text);
      } else if (name === "image") {
        reply.querySelector(".body").after(attachments({ role: "assistant", attachments: [data] }) || "");
      } else if (name === "error") {
        cut = data.error || { message: "The reply was cut short." };
      } else if (name === "done") {
        live.end();
        if (data.model) reply.querySelector(".who").textContent = data.model;
        const u = data.usage || {};
        reply.querySelector(".meta").textContent =
          `${count(u.inputTokens)} tokens in · ${count(u.outputTokens)} out · ${dollars(data.costUSD)}`;
        setStatus(reply, data.status === "complete" ? "" : data.status);
        if (data.status !== "complete") cut = cut || data.error || { message: "The reply was cut short." };
      }
    });
    live.end();
    if (!reply.dataset.status && !reply.querySelector(".meta").textContent) {
      // The stream ended without its done event: the connection broke.
      setStatus(reply, "incomplete");
      cut = cut || { message: "The connection to the gateway broke before the reply finished." };
    }
    if (cut) {
      const replaceId = userLi.dataset.id;
      showError(new ApiError(0, cut.message), () => retryTurn(text, replaceId));
    }
    announce("Reply finished.");
  } catch (err) {
    if (err.name === "AbortError") {
      if (live) live.end();
      if (reply) {
        setStatus(reply, "stopped");
        reply.querySelector(".meta").textContent = "Stopped. What was generated is counted in your usage.";
      }
      announce("Stopped.");
    } else {
      if (userLi) setStatus(userLi, "error");
      if (reply && !reply.querySelector(".body").textContent) reply.remove();
      const replaceId = userLi && userLi.dataset.id;
      showError(err, () => retryTurn(text, replaceId));
    }
  } finally {
    reply?.classList.remove("live");
    state.live = null;
    setBusy(false);
    markActions();
    if (sessionId) refreshSession(sessionId);
    refreshUsageSoon();
  }
}

// retryTurn sends the text again: in place of the failed turn where the
// gateway can replace one, else as a new message.
function retryTurn(text, replaceId) {
  if (state.features.replace && replaceId) return send(text, { replace: replaceId });
  return send(text);
}

// removeFrom takes the message with this id and everything after it off
// the page (the gateway drops them from the session in the same turn).
function removeFrom(id) {
  const items = [...$("messages").children];
  const at = items.findIndex((li) => li.dataset.id === id);
  if (at >= 0) for (const li of items.slice(at)) li.remove();
  $("messages").querySelector(".dropped")?.remove();
}

// markDropped shows where the model's context began for this turn: the
// oldest n stored messages were left out.
function markDropped(n, before) {
  $("messages").querySelector(".dropped")?.remove();
  const items = [...$("messages").children].filter((li) => li !== before && li.classList.contains("msg"));
  const after = items[Math.min(n, items.length) - 1];
  const note = el("li", { class: "dropped" },
    el("p", { text: `The ${n === 1 ? "message" : `${n} messages`} above no longer fit the model's context and ${n === 1 ? "was" : "were"} left out of this reply.` }));
  if (after) after.after(note);
  else $("messages").prepend(note);
}

async function refreshSession(id) {
  try {
    const page = await request("GET", "/api/sessions?limit=100");
    const fresh = page.sessions.find((s) => s.id === id);
    if (fresh) {
      if (state.session && state.session.id === id) {
        Object.assign(state.session, fresh);
        showHeader();
      }
      const known = new Set(page.sessions.map((s) => s.id));
      state.sessions = [...page.sessions, ...state.sessions.filter((s) => !known.has(s.id))];
      if (!state.next) state.next = page.next || "";
      renderSessions();
    }
  } catch (_) { /* the list refreshes on the next turn */ }
}

function stopLive() {
  if (state.live) state.live.controller.abort();
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("attach").disabled = busy || $("attach").dataset.blocked === "true";
  if (!busy && document.activeElement === document.body) $("input").focus();
}

// ---------- usage ----------

async function loadUsage() {
  let fresh;
  try {
    fresh = await request("GET", "/api/me/usage");
  } catch (err) {
    $("usage-text").textContent = "Usage is not available right now.";
    if (!$("usage-view").hidden) showError(err, loadUsage);
    return;
  }
  // Nothing moves on the page unless a figure changed.
  if (state.usage && JSON.stringify(fresh) === JSON.stringify(state.usage)) return;
  state.usage = fresh;
  const q = state.usage.quota || {};
  $("usage-text").textContent = quotaSummary(q);
  $("usage-fill").style.width = `${(quotaFraction(q) * 100).toFixed(1)}%`;
  $("usage-bar").hidden = !q.dailyHardUSD;
  $("usage-bar").classList.toggle("high", quotaFraction(q) >= 0.9);
  if (!$("usage-view").hidden) renderUsage($("usage-body"), state.usage);
}

// A stopped or finished turn is settled by the gateway a moment after the
// stream ends; the figures are read again once it has.
function refreshUsageSoon() {
  loadUsage();
  setTimeout(loadUsage, 1200);
}

// ---------- notices ----------

// showError says what went wrong, plainly, with a way to try again. A 429
// says when sending works again, in the person's own time zone.
function showError(err, retry = null) {
  const stick = nearEnd();
  let lead = "";
  let detail = err && err.message ? err.message : String(err);
  if (err instanceof ApiError && err.status === 429) {
    lead = /daily spending limit/i.test(detail) ? "You have reached today's spending limit." : "The model is busy right now.";
    if (err.retryAt) lead += ` You can send again ${whenAt(err.retryAt)}.`;
  } else if (err instanceof ApiError && err.status >= 500) {
    lead = "The model could not answer.";
  }
  detail = detail.charAt(0).toUpperCase() + detail.slice(1);
  $("notice-text").textContent = lead || detail;
  $("notice-detail").textContent = lead ? detail : "";
  state.retry = retry;
  $("retry").hidden = !retry;
  $("notice").hidden = false;
  if (stick) scrollToEnd(true);
}

function clearNotice() {
  $("notice").hidden = true;
  state.retry = null;
}

// ---------- attachments (features.attachments) ----------

function updateAttach() {
  const a = state.features.attachments;
  const btn = $("attach");
  btn.hidden = !a;
  if (!a) return;
  const m = modelInfo($("model").value);
  const takes = Array.isArray(m.input) && m.input.includes("image");
  const limit = `${(a.maxBytes / 1048576).toFixed(a.maxBytes % 1048576 ? 1 : 0)} MB`;
  btn.dataset.blocked = String(!takes);
  btn.disabled = !takes || !!state.live;
  $("attach-hint").textContent = takes ? `Pictures up to ${limit}` : `${m.id} does not take pictures`;
  if (!takes) clearAttachment();
}

async function attachFile(file) {
  const a = state.features.attachments;
  if (!a) return;
  if (a.mediaTypes && !a.mediaTypes.includes(file.type)) {
    showError(new ApiError(0, `${file.name} is not a picture the gateway takes (${a.mediaTypes.join(", ")}).`));
    return;
  }
  if (file.size > a.maxBytes) {
    showError(new ApiError(0, `${file.name} is ${(file.size / 1048576).toFixed(1)} MB; pictures can be at most ${(a.maxBytes / 1048576).toFixed(1)} MB.`));
    return;
  }
  const data = await new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
  state.attachment = { file, mediaType: file.type, data };
  $("attached").replaceChildren(el("span", { text: file.name }),
    el("button", { type: "button", class: "small", text: "Remove", "aria-label": `Remove ${file.name}`, onclick: clearAttachment }));
  $("attached").hidden = false;
}

function clearAttachment() {
  state.attachment = null;
  $("attached").replaceChildren();
  $("attached").hidden = true;
}

// ---------- rename and delete ----------

function startRename() {
  const s = state.session;
  if (!s) return;
  $("title-input").value = s.title || "";
  $("title").hidden = true;
  $("rename").hidden = true;
  $("title-form").hidden = false;
  $("title-input").focus();
  $("title-input").select();
}

async function saveRename() {
  const s = state.session;
  const title = $("title-input").value.trim();
  if (!s || $("title-form").hidden) return;
  $("title-form").hidden = true;
  if (title === (s.title || "")) return showHeader();
  try {
    const updated = await request("PATCH", `/api/sessions/${encodeURIComponent(s.id)}`, { body: { title } });
    Object.assign(s, updated);
    state.sessions = state.sessions.map((x) => (x.id === s.id ? { ...x, ...updated } : x));
    renderSessions();
    announce("Renamed.");
  } catch (err) {
    showError(err);
  }
  showHeader();
  $("rename").focus();
}

async function deleteSession() {
  const s = state.session;
  if (!s) return;
  const n = $("messages").querySelectorAll(".msg").length;
  const ok = await confirmDialog({
    title: "Delete this conversation?",
    body: [`“${s.title || "Untitled"}” and its ${n} message${n === 1 ? "" : "s"} will be gone for good. Your usage record keeps only what it cost.`],
    confirm: "Delete conversation",
    danger: true,
  });
  if (!ok) return;
  try {
    await request("DELETE", `/api/sessions/${encodeURIComponent(s.id)}`);
    state.sessions = state.sessions.filter((x) => x.id !== s.id);
    renderSessions();
    newChat();
    announce("Conversation deleted.");
  } catch (err) {
    showError(err);
  }
}

// ---------- your data ----------

function dataContext() {
  return {
    email: state.email,
    titleOf: (id) => (state.sessions.find((s) => s.id === id) || {}).title || "",
    allSessions,
    reloadSessions: async () => { await loadSessions(); },
    afterErase: async () => {
      state.session = null;
      await loadSessions();
      $("messages").replaceChildren();
      $("empty").hidden = false;
      showHeader();
    },
  };
}

// ---------- phone drawer ----------

function openDrawer() {
  document.body.classList.add("drawer-open");
  $("menu").setAttribute("aria-expanded", "true");
  $("sidebar").querySelector("a, button, input")?.focus();
}

function closeDrawer() {
  if (!document.body.classList.contains("drawer-open")) return;
  document.body.classList.remove("drawer-open");
  $("menu").setAttribute("aria-expanded", "false");
}

// ---------- wiring ----------

function wire() {
  window.addEventListener("hashchange", () => route());
  window.addEventListener("popstate", () => route());
  $("new-chat").addEventListener("click", () => { go("#/"); newChat(); closeDrawer(); $("input").focus(); });
  $("search").addEventListener("input", async () => {
    if (state.next && $("search").value.trim()) await allSessions().catch(() => {});
    renderSessions();
  });
  $("more-sessions").addEventListener("click", async () => {
    const page = await request("GET", `/api/sessions?limit=100&cursor=${encodeURIComponent(state.next)}`);
    state.sessions.push(...page.sessions);
    state.next = page.next || "";
    renderSessions();
  });
  $("model").addEventListener("change", () => {
    remembered.set($("model").value);
    modelChanged();
  });

  const input = $("input");
  const grow = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * 0.4)}px`;
  };
  input.addEventListener("input", grow);
  input.addEventListener("keydown", (ev) => {
    // Enter sends, Shift+Enter breaks the line; never mid-composition (IME).
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || state.live) return;
    input.value = "";
    grow();
    send(text);
  });
  $("stop").addEventListener("click", () => { stopLive(); input.focus(); });
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    if (state.live && !$("dialog").open) {
      ev.preventDefault();
      stopLive();
    } else if (document.body.classList.contains("drawer-open")) {
      closeDrawer();
      $("menu").focus();
    }
  });

  $("retry").addEventListener("click", () => {
    const again = state.retry;
    clearNotice();
    if (again) again();
  });
  $("dismiss").addEventListener("click", clearNotice);

  $("rename").addEventListener("click", startRename);
  $("title-form").addEventListener("submit", (ev) => { ev.preventDefault(); saveRename(); });
  $("title-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      $("title-form").hidden = true;
      showHeader();
      $("rename").focus();
    }
  });
  $("title-input").addEventListener("blur", () => saveRename());
  $("delete").addEventListener("click", deleteSession);

  $("attach").addEventListener("click", () => $("attach-file").click());
  $("attach-file").addEventListener("change", () => {
    const f = $("attach-file").files[0];
    $("attach-file").value = "";
    if (f) attachFile(f).catch((err) => showError(err));
  });

  // Copy, edit and regenerate buttons live in re-rendered content: one
  // listener handles them all.
  $("messages").addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button");
    if (!btn) return;
    const li = btn.closest("li.msg");
    if (btn.classList.contains("copy-code")) {
      const code = btn.closest(".codeblock").querySelector("code").textContent;
      flash(btn, (await copyText(code)) ? "Copied" : "Copy failed");
    } else if (btn.classList.contains("copy-msg")) {
      flash(btn, (await copyText(li.dataset.text || "")) ? "Copied" : "Copy failed");
    } else if (btn.classList.contains("regenerate")) {
      const users = [...$("messages").querySelectorAll("li.msg.user")];
      const last = users[users.length - 1];
      if (last) send(last.dataset.text, { replace: last.dataset.id });
    } else if (btn.classList.contains("edit")) {
      editMessage(li);
    }
  });

  $("menu").addEventListener("click", () => (document.body.classList.contains("drawer-open") ? closeDrawer() : openDrawer()));
  $("scrim").addEventListener("click", closeDrawer);
  $("sessions").addEventListener("click", (ev) => { if (ev.target.closest("a")) closeDrawer(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) loadUsage(); });
}

// editMessage turns a message of the person's into a form; saving sends
// the new text in place of it and everything after (features.replace).
function editMessage(li) {
  const area = el("textarea", { class: "edit-area", "aria-label": "Edit your message", rows: 3 });
  area.value = li.dataset.text;
  const form = el("form", { class: "edit-form" }, area,
    el("div", { class: "row" },
      el("button", { type: "submit", class: "primary", text: "Send instead" }),
      el("button", { type: "button", class: "cancel", text: "Cancel" })));
  const body = li.querySelector(".body");
  body.hidden = true;
  body.after(form);
  area.focus();
  form.querySelector(".cancel").addEventListener("click", () => { form.remove(); body.hidden = false; });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = area.value.trim();
    if (!text) return;
    send(text, { replace: li.dataset.id });
  });
}

start();
