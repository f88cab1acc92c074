// The chat page. Every request goes to the page's own origin; OAuth2 Proxy
// adds the signed-in user's identity and the gateway token on the way in.
// Text from the model is only ever set as textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, sending: false };

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) {
    throw new Error(await errorMessage(resp));
  }
  return resp.status === 204 ? null : resp.json();
}

async function errorMessage(resp) {
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return `The gateway answered ${resp.status}`;
}

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function dollars(s) {
  const n = Number(s);
  return Number.isFinite(n) ? `$${n.toFixed(n < 0.01 && n > 0 ? 4 : 2)}` : s;
}

async function loadModels() {
  const list = await api("GET", "/v1/models");
  const select = $("model");
  select.replaceChildren();
  for (const m of list.data) {
    const opt = document.createElement("option");
    opt.value = opt.textContent = m.id;
    select.append(opt);
  }
}

async function loadSessions() {
  const { sessions } = await api("GET", "/api/sessions?limit=50");
  const ul = $("sessions");
  ul.replaceChildren();
  for (const s of sessions) {
    const li = document.createElement("li");
    li.textContent = s.title || "Untitled";
    li.dataset.id = s.id;
    li.setAttribute("aria-current", String(state.session && state.session.id === s.id));
    li.addEventListener("click", () => openSession(s.id));
    ul.append(li);
  }
}

async function loadUsage() {
  try {
    const q = (await api("GET", "/api/me/usage")).quota || {};
    let text = `Spent ${dollars(q.spentUSD || "0")}`;
    // What is left is rounded down: the page never promises more than there is.
    const left = Math.floor(Number(q.remainingUSD) * 100) / 100;
    if (q.dailyHardUSD) text += ` of ${dollars(q.dailyHardUSD)} · $${left.toFixed(2)} left`;
    $("usage-text").textContent = text;
  } catch (err) {
    $("usage-text").textContent = "Usage is not available.";
  }
}

function showSession(s) {
  state.session = s;
  $("title").textContent = s ? (s.title || "Untitled") : "New chat";
  $("rename").hidden = $("delete").hidden = !s;
  if (s && s.model) $("model").value = s.model;
  for (const li of $("sessions").children) {
    li.setAttribute("aria-current", String(!!s && li.dataset.id === s.id));
  }
}

function addMessage(role, text, status) {
  const li = document.createElement("li");
  li.className = role;
  if (status === "incomplete" || status === "error") li.classList.add("incomplete");
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(body);
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function addMeta(li, text) {
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = text;
  li.append(meta);
}

async function openSession(id) {
  notice("");
  const s = await api("GET", `/api/sessions/${encodeURIComponent(id)}`);
  showSession(s);
  $("messages").replaceChildren();
  for (const m of s.messages || []) addMessage(m.role, m.content, m.status);
}

function newChat() {
  notice("");
  showSession(null);
  $("messages").replaceChildren();
  $("input").focus();
}

// readEvents parses a text/event-stream response body, calling onEvent with
// each event's name and parsed data.
async function readEvents(resp, onEvent) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const raw = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

async function send(text) {
  const model = $("model").value;
  if (!state.session) {
    const title = text.length > 60 ? text.slice(0, 57) + "…" : text;
    showSession(await api("POST", "/api/sessions", { model, title }));
    await loadSessions();
  }
  addMessage("user", text);
  const reply = addMessage("assistant", "");
  const body = reply.querySelector(".text");
  const resp = await fetch(`/api/sessions/${encodeURIComponent(state.session.id)}/messages`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ content: text, model }),
  });
  if (!resp.ok) {
    reply.remove();
    throw new Error(await errorMessage(resp));
  }
  await readEvents(resp, (name, data) => {
    if (name === "delta") {
      body.textContent += data.text;
    } else if (name === "session" && data.droppedMessages > 0) {
      notice(`The oldest ${data.droppedMessages} messages no longer fit the model's context and were left out of this turn.`);
    } else if (name === "error") {
      reply.classList.add("incomplete");
      notice(data.error ? data.error.message : "The reply was cut short.");
    } else if (name === "done") {
      const u = data.usage || {};
      addMeta(reply, `${data.model} · ${u.inputTokens || 0} tokens in / ${u.outputTokens || 0} out · ${dollars(data.costUSD)}`);
      reply.dataset.status = data.status;
    }
  });
}

function wire() {
  $("new-chat").addEventListener("click", newChat);
  $("composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("input").value.trim();
    if (!text || state.sending) return;
    state.sending = true;
    $("send").disabled = true;
    notice("");
    try {
      $("input").value = "";
      await send(text);
    } catch (err) {
      notice(err.message);
    } finally {
      state.sending = false;
      $("send").disabled = false;
      loadUsage();
    }
  });
  $("input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("rename").addEventListener("click", async () => {
    const title = prompt("Rename this conversation", state.session.title || "");
    if (title === null) return;
    try {
      await api("PATCH", `/api/sessions/${encodeURIComponent(state.session.id)}`, { title });
      state.session.title = title;
      showSession(state.session);
      await loadSessions();
    } catch (err) { notice(err.message); }
  });
  $("delete").addEventListener("click", async () => {
    if (!confirm("Delete this conversation? This cannot be undone.")) return;
    try {
      await api("DELETE", `/api/sessions/${encodeURIComponent(state.session.id)}`);
      newChat();
      await loadSessions();
    } catch (err) { notice(err.message); }
  });
}

async function start() {
  wire();
  try {
    await Promise.all([loadModels(), loadSessions(), loadUsage()]);
  } catch (err) {
    notice(err.message);
  }
}

start();
