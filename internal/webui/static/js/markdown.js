// Replies are Markdown. marked turns them into HTML, DOMPurify keeps only
// the elements Markdown makes, and highlight.js colours code once it has
// loaded (it is fetched the first time a reply holds a code block).
//
// What a reply can never do: run script, load anything (Markdown images
// become links, raw HTML is shown as text), or link anywhere but http(s)
// and mailto. The Content-Security-Policy and Trusted Types back this up:
// the only HTML the page ever parses is DOMPurify's output.
import { Marked } from "../vendor/marked/marked.esm.js";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";

const escapeHTML = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // Raw HTML in a reply is text the model wrote, shown as written.
    html({ text, block }) {
      return block ? `<p class="raw">${escapeHTML(text.trim())}</p>\n` : escapeHTML(text);
    },
    // Replies sit under the page's own headings.
    heading({ tokens, depth }) {
      const level = Math.min(depth + 2, 6);
      return `<h${level}>${this.parser.parseInline(tokens)}</h${level}>\n`;
    },
    // An image would be fetched as soon as it is shown: a link is not.
    image({ href, text }) {
      return `<a href="${escapeHTML(href)}">${escapeHTML(text || href)}</a>`;
    },
    // A disabled checkbox is a form control without a label; a glyph reads better.
    checkbox({ checked }) {
      return `<span class="task">${checked ? "☑" : "☐"}</span> `;
    },
  },
});

const replyPolicy = {
  ALLOWED_TAGS: ["a", "blockquote", "br", "code", "del", "em", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul"],
  ALLOWED_ATTR: ["href", "title", "class", "align", "start"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  RETURN_DOM_FRAGMENT: true,
};
const highlightPolicy = { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"], RETURN_DOM_FRAGMENT: true };

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

// render returns the reply's Markdown as sanitised DOM nodes.
export function render(text) {
  return toNodes(marked.parse(text || ""));
}

// Streamed renders a reply as it grows without parsing it all again on
// every frame. Markdown blocks before the last one do not change when text
// is appended (a later block cannot reach back into them), so each frame
// lexes only the text after the blocks already drawn, draws the finished
// blocks once and redraws only the last. finish draws the whole reply in
// one pass, so the end result is exactly render's, reference links
// included.
export class Streamed {
  constructor(box) {
    this.box = box;
    this.drawn = 0; // bytes of text drawn for good
    this.tail = []; // the nodes of the block still growing
  }
  update(text) {
    // The lexer folds \r\n into \n; the offsets below count the folded text.
    text = text.replace(/\r\n?/g, "\n");
    const tokens = marked.lexer(text.slice(this.drawn));
    let last = tokens.length - 1;
    while (last > 0 && tokens[last].type === "space") last--;
    for (const n of this.tail) n.remove();
    if (last > 0) {
      const done = tokens.slice(0, last);
      this.box.append(toNodes(marked.parser(done)));
      this.drawn += done.reduce((n, t) => n + t.raw.length, 0);
    }
    const tail = toNodes(marked.parser(tokens.slice(last)));
    this.tail = [...tail.childNodes];
    this.box.append(tail);
  }
  finish(text) {
    this.box.replaceChildren(render(text));
    this.tail = [];
  }
}

function toNodes(html) {
  const frag = DOMPurify.sanitize(html, replyPolicy);
  for (const code of frag.querySelectorAll("pre > code")) decorate(code);
  for (const table of frag.querySelectorAll("table")) {
    // A wide table scrolls on its own rather than widening the page.
    const box = document.createElement("div");
    box.className = "table-scroll";
    box.tabIndex = 0;
    box.setAttribute("role", "region");
    box.setAttribute("aria-label", "Table");
    table.replaceWith(box);
    box.append(table);
  }
  return frag;
}

// decorate gives a code block its language label and a copy button, and
// colours it when highlight.js is ready.
function decorate(code) {
  const pre = code.parentElement;
  const lang = (/(?:^|\s)language-([\w+#.-]+)/.exec(code.className) || [])[1] || "";
  const box = document.createElement("div");
  box.className = "codeblock";
  const bar = document.createElement("div");
  bar.className = "codebar";
  const label = document.createElement("span");
  label.textContent = lang || "code";
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy-code";
  copy.textContent = "Copy code";
  bar.append(label, copy);
  pre.replaceWith(box);
  box.append(bar, pre);
  pre.tabIndex = 0; // a scrolling region must be reachable by keyboard
  pre.setAttribute("aria-label", lang ? `${lang} code` : "code");
  highlight(code, lang);
}

// Highlighted blocks are kept by content: a streamed reply is rendered
// again on every frame, and only its last block is still changing.
const highlighted = new Map();
let hljs = null;
let loading = null;
const waiting = new Set();

// loadHighlighter fetches highlight.js once, then colours the blocks that
// waited for it; a failed fetch is tried again a little later.
function loadHighlighter() {
  loading ??= import("../vendor/highlight.js/highlight.min.js").then((m) => {
    hljs = m.default;
    for (const c of waiting) if (c.isConnected) highlight(c, (/language-([\w+#.-]+)/.exec(c.className) || [])[1]);
    waiting.clear();
  }, () => {
    loading = null;
    setTimeout(() => { if (waiting.size) loadHighlighter(); }, 3000);
  });
}

function highlight(code, lang) {
  if (!lang) return;
  const key = lang + "\u0000" + code.textContent;
  const done = highlighted.get(key);
  if (done) {
    code.replaceChildren(done.cloneNode(true));
    code.classList.add("hljs");
    return;
  }
  if (!hljs) {
    waiting.add(code);
    loadHighlighter();
    return;
  }
  if (!hljs.getLanguage(lang)) return;
  const out = hljs.highlight(code.textContent, { language: lang, ignoreIllegals: true }).value;
  const frag = DOMPurify.sanitize(out, highlightPolicy);
  if (highlighted.size > 200) highlighted.clear();
  highlighted.set(key, frag.cloneNode(true));
  code.replaceChildren(frag);
  code.classList.add("hljs");
}
