// Small DOM and formatting helpers. Text is only ever set as text: the one
// place HTML is parsed is markdown.js, through DOMPurify.

export const $ = (id) => document.getElementById(id);

// el builds an element: attributes (on* keys become listeners, "class" and
// "text" are shorthands) and children (strings become text nodes).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  node.append(...children.filter(Boolean));
  return node;
}

// dollars formats an exact decimal string from the gateway. Small amounts
// keep four decimals so a cheap reply does not read as free.
export function dollars(s) {
  const n = Number(s);
  if (!Number.isFinite(n)) return String(s);
  if (n > 0 && n < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toFixed(2)}`;
}

// dollarsDown rounds down to the cent: what is left is never overstated.
export function dollarsDown(s) {
  const n = Number(s);
  return Number.isFinite(n) ? `$${(Math.floor(n * 100) / 100).toFixed(2)}` : String(s);
}

export const count = (n) => new Intl.NumberFormat().format(n || 0);

// whenAt says when a moment is, in the person's own time zone, to follow a
// verb: "at 7:00 PM", "tomorrow at 7:00 AM", or a date further out.
export function whenAt(date, now = new Date()) {
  const time = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" }).format(date);
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((day(date) - day(now)) / 86400000);
  if (days === 0) return `at ${time}`;
  if (days === 1) return `tomorrow at ${time}`;
  const when = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "short", day: "numeric" }).format(date);
  return `on ${when} at ${time}`;
}

export function dateTime(s) {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? String(s) : new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(d);
}

// fold makes search match regardless of case and accents.
export const fold = (s) => (s || "").normalize("NFKD").replace(/\p{M}/gu, "").toLocaleLowerCase();

// announce tells screen readers about something that happened off-focus.
export function announce(text) {
  const live = $("status");
  live.textContent = "";
  // A change of text after a tick is announced even when it repeats.
  setTimeout(() => { live.textContent = text; }, 50);
}

// confirmDialog asks before something that cannot be undone. body is a list
// of nodes or strings; resolves true when confirmed.
export function confirmDialog({ title, body, confirm, danger = false, extra = null }) {
  const dialog = $("dialog");
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(...[].concat(body).map((b) => (typeof b === "string" ? el("p", { text: b }) : b)));
  const ok = $("dialog-confirm");
  ok.textContent = confirm;
  ok.classList.toggle("danger", danger);
  $("dialog-extra").replaceChildren(...(extra ? [extra] : []));
  return new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener("close", done);
      resolve(dialog.returnValue === "confirm");
    };
    dialog.addEventListener("close", done);
    dialog.returnValue = "";
    dialog.showModal();
    $("dialog-cancel").focus();
  });
}

// copyText puts text on the clipboard, falling back to a selection copy where
// the Clipboard API is not available (a page served over plain HTTP).
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) { /* fall back */ }
  }
  const area = el("textarea", { class: "offscreen", "aria-hidden": "true", tabindex: "-1" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
  area.remove();
  return ok;
}

// flash briefly changes a button's label to confirm what it did.
export function flash(button, text) {
  const was = button.dataset.label || button.textContent;
  button.dataset.label = was;
  button.textContent = text;
  clearTimeout(button._flash);
  button._flash = setTimeout(() => { button.textContent = was; }, 1500);
}

// privacySentence says in one sentence who can read the person's
// conversations under this gateway's privacy toggles (GET /api/me).
export function privacySentence(p) {
  const admins = [p.adminChatAccess && "read", p.adminExport && "export"].filter(Boolean);
  if (admins.length) {
    const shared = p.communitySharing ? "; a conversation you share can be read by everyone signed in here" : "";
    return `This gateway's admins can ${admins.join(" and ")} your conversations, and each time they do it is listed under Your data${shared}.`;
  }
  const except = p.communitySharing ? ", except those you share with everyone signed in here" : "";
  return `Nobody else can read your conversations through this gateway${except}: its admins see what you spend, never what you write.`;
}
