// The Usage view: today against the quota, and the last 30 days by model as
// /api/me/usage reports them, with a small stacked bar chart drawn in SVG.
import { el, svg, dollars, dollarsDown, count, whenAt } from "./ui.js";

// quotaSummary is the one-line standing shown in the sidebar.
export function quotaSummary(q) {
  let text = `${dollars(q.spentUSD || "0")} spent`;
  if (q.dailyHardUSD) text += ` of ${dollars(q.dailyHardUSD)} · ${dollarsDown(q.remainingUSD || "0")} left`;
  return text;
}

// quotaFraction is how much of the hard limit is used or held, 0..1.
export function quotaFraction(q) {
  const hard = Number(q.dailyHardUSD);
  if (!hard) return q.dailyHardUSD ? 1 : 0; // a limit of $0 is all used
  return Math.min(1, (Number(q.spentUSD || 0) + Number(q.reservedUSD || 0)) / hard);
}

// byModel sums the days per model, most expensive first.
function byModel(days) {
  const m = new Map();
  for (const d of days) {
    const t = m.get(d.model) || { model: d.model, requests: 0, input: 0, output: 0, images: 0, cost: 0 };
    t.requests += d.requests;
    t.images += d.images || 0; // pictures, once the gateway counts them
    t.input += (d.tokens.input || 0) + (d.tokens.cacheRead || 0) + (d.tokens.cacheWrite || 0);
    t.output += d.tokens.output || 0;
    t.cost += Number(d.costUSD);
    m.set(d.model, t);
  }
  return [...m.values()].sort((a, b) => b.cost - a.cost || a.model.localeCompare(b.model));
}

// dayRange lists every date from..to inclusive ("YYYY-MM-DD"), so days
// without use still take their place on the chart.
function dayRange(from, to) {
  const out = [];
  const [y, m, d] = from.split("-").map(Number);
  const cur = new Date(Date.UTC(y, m - 1, d));
  for (let i = 0; i < 400; i++) {
    const s = cur.toISOString().slice(0, 10);
    out.push(s);
    if (s >= to) break;
    cur.setUTCDate(cur.getUTCDate() + 1);
  }
  return out;
}

const shortDate = (s) => new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" }).format(new Date(s + "T00:00:00Z"));

// renderUsage fills the Usage view.
export function renderUsage(root, u) {
  const q = u.quota || {};
  const models = byModel(u.days);
  const series = new Map(models.map((m, i) => [m.model, i % 6]));
  root.replaceChildren(
    todayCard(q),
    el("section", { class: "card", "aria-labelledby": "period-h" },
      el("h2", { id: "period-h", text: "Last 30 days" }),
      el("p", { class: "big", text: `${dollars(u.totalUSD)} in ${count(models.reduce((n, m) => n + m.requests, 0))} requests` }),
      u.days.length ? chart(u, series) : el("p", { class: "muted", text: "No requests in this period." }),
      models.length ? modelTable(models, series) : null,
      el("p", { class: "muted small", text: `Days are counted in ${u.timeZone === "UTC" ? "UTC" : u.timeZone}, the time zone of the daily quota.` }),
    ),
  );
}

function todayCard(q) {
  const rows = [
    ["Spent today", dollars(q.spentUSD || "0")],
    Number(q.reservedUSD) > 0 ? ["Held by replies in progress", dollars(q.reservedUSD)] : null,
    q.dailySoftUSD ? ["Warning at", dollars(q.dailySoftUSD)] : null,
    q.dailyHardUSD ? ["Daily limit", dollars(q.dailyHardUSD)] : ["Daily limit", "none"],
    q.dailyHardUSD ? ["Left today", dollarsDown(q.remainingUSD || "0")] : null,
  ].filter(Boolean);
  const frac = quotaFraction(q);
  const bar = el("div", { class: "meter", "aria-hidden": "true" }, el("div", { class: "meter-fill" }));
  bar.firstChild.style.width = `${(frac * 100).toFixed(1)}%`;
  if (frac >= 0.9) bar.classList.add("high");
  return el("section", { class: "card", "aria-labelledby": "today-card-h" },
    el("h2", { id: "today-card-h", text: "Today" }),
    q.dailyHardUSD ? bar : null,
    el("dl", { class: "facts" }, ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
    q.resetsAt ? el("p", { class: "muted small", text: `The daily limit starts again ${whenAt(new Date(q.resetsAt))}.` }) : null,
  );
}

// chart draws one stacked bar a day. The SVG is a picture; the table
// below it carries the same figures for screen readers.
function chart(u, series) {
  const days = dayRange(u.from, u.to);
  const perDay = new Map(days.map((d) => [d, []]));
  for (const d of u.days) (perDay.get(d.day) || []).push(d);
  const totals = days.map((d) => perDay.get(d).reduce((s, x) => s + Number(x.costUSD), 0));
  const max = Math.max(...totals, 0) || 1;
  const W = 10, GAP = 2, H = 100;
  const pic = svg("svg", { viewBox: `0 0 ${days.length * W} ${H}`, preserveAspectRatio: "none", class: "chart-bars", "aria-hidden": "true", focusable: "false" });
  days.forEach((day, i) => {
    let y = H;
    for (const d of perDay.get(day).sort((a, b) => series.get(a.model) - series.get(b.model))) {
      const h = (Number(d.costUSD) / max) * H;
      if (h <= 0) continue;
      y -= h;
      pic.append(svg("rect", { x: i * W + GAP / 2, y, width: W - GAP, height: h, class: `s${series.get(d.model)}` },
        svg("title", { text: `${shortDate(day)} · ${d.model} · ${dollars(d.costUSD)} · ${d.requests} requests` })));
    }
  });
  const peak = totals.indexOf(Math.max(...totals));
  const label = `Spend per day from ${shortDate(u.from)} to ${shortDate(u.to)}; the most was ${dollars(String(totals[peak]))} on ${shortDate(days[peak])}.`;
  return el("figure", { class: "chart", role: "img", "aria-label": label },
    el("div", { class: "chart-area" },
      el("span", { class: "chart-max", text: dollars(String(max)) }),
      pic),
    el("div", { class: "chart-axis", "aria-hidden": "true" },
      el("span", { text: shortDate(days[0]) }),
      el("span", { text: shortDate(days[days.length - 1]) })),
  );
}

function modelTable(models, series) {
  const pictures = models.some((m) => m.images > 0);
  return el("table", { class: "usage-table" },
    el("caption", { class: "visually-hidden", text: "Use by model over the period" }),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: "Model" }),
      el("th", { scope: "col", class: "num", text: "Requests" }),
      el("th", { scope: "col", class: "num tokens", text: "Tokens in" }),
      el("th", { scope: "col", class: "num tokens", text: "Tokens out" }),
      pictures ? el("th", { scope: "col", class: "num", text: "Pictures" }) : null,
      el("th", { scope: "col", class: "num", text: "Cost" }))),
    el("tbody", {}, ...models.map((m) => el("tr", {},
      el("th", { scope: "row" }, el("span", { class: `swatch s${series.get(m.model)}`, "aria-hidden": "true" }), m.model),
      el("td", { class: "num", text: count(m.requests) }),
      el("td", { class: "num tokens", text: count(m.input) }),
      el("td", { class: "num tokens", text: count(m.output) }),
      pictures ? el("td", { class: "num", text: count(m.images) }) : null,
      el("td", { class: "num", text: dollars(String(m.cost)) })))),
  );
}
