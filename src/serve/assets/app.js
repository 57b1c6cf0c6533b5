// lookalike's web app: plain DOM code, no framework. Every value from the index is placed
// with textContent or as an attribute, never parsed as HTML.
"use strict";

const TOKEN = document.querySelector('meta[name="lookalike-token"]').content;
// the command that brings this index up to date, naming its folder
const REFRESH = document.querySelector('meta[name="lookalike-refresh"]').content;
const main = document.getElementById("main");
const PAGE_SIZE = 60;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick" || k === "onchange") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return node;
}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  if (opts.method && opts.method !== "GET") opts.headers["x-lookalike-token"] = TOKEN;
  const res = await fetch(path, opts);
  let body = null;
  try { body = await res.json(); } catch (_) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}

// n and the noun for it: one for 1, many otherwise ("1 copy", "2 copies", "0 copies").
function counted(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// replaceChildren would print a null as the text "null": absent parts are dropped.
function put(node, ...kids) {
  node.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined));
}

function show(...nodes) {
  put(main, ...nodes);
}

function failure(e) {
  show(el("p", { class: "error", role: "alert" }, String(e.message || e)));
}

// A name as the command line shows it, so that two different names never look alike: bytes
// that are not UTF-8 (from the `KEY_bytes` companion) as \xNN, a backslash as \\, control
// and invisible formatting characters as \n, \r, \t or \u{hex}, and in a stretch of text
// NFC would change the characters joined to its first as \u{hex} (cafe\u{301}, not café).
function named(obj, key) {
  const raw = obj[`${key}_bytes`];
  if (Array.isArray(raw)) return escapeBytes(raw);
  const text = obj[key];
  return text === null || text === undefined ? text : escapeText(String(text));
}

function escapeText(text) {
  const chars = Array.from(text);
  let out = "";
  for (let i = 0; i < chars.length;) {
    let j = i + 1;
    while (j < chars.length && joinsBefore(chars[j])) j++;
    const stretch = chars.slice(i, j).join("");
    const odd = stretch.normalize("NFC") !== stretch;
    for (let k = i; k < j; k++) {
      const ch = chars[k];
      out += odd && (k > i || joinsBefore(ch)) ? `\\u{${ch.codePointAt(0).toString(16)}}` : escapeChar(ch);
    }
    i = j;
  }
  return out;
}

// A character NFC may join to the one before it, move past it, or replace: a combining mark,
// a Hangul vowel or final jamo, or a character not in NFC on its own.
function joinsBefore(ch) {
  const c = ch.codePointAt(0);
  return /\p{M}/u.test(ch) || (c >= 0x1161 && c <= 0x1175) || (c >= 0x11a8 && c <= 0x11c2) ||
    ch.normalize("NFC") !== ch;
}

function escapeChar(ch) {
  const c = ch.codePointAt(0);
  if (ch === "\\") return "\\\\";
  if (ch === "\n") return "\\n";
  if (ch === "\r") return "\\r";
  if (ch === "\t") return "\\t";
  const control = c < 0x20 || (c >= 0x7f && c < 0xa0);
  const format = c === 0xad || c === 0x61c || c === 0x180e || (c >= 0x200b && c <= 0x200f) ||
    (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x2069) || c === 0xfeff || (c >= 0xfff9 && c <= 0xfffb);
  return control || format ? `\\u{${c.toString(16)}}` : ch;
}

// UTF-8 decoded by hand: each byte that does not start or continue a valid sequence is \xNN.
function escapeBytes(b) {
  let out = "";
  let text = "";
  let i = 0;
  const cont = (k, lo, hi) => k < b.length && b[k] >= lo && b[k] <= hi;
  while (i < b.length) {
    const x = b[i];
    let n = 0;
    let c = 0;
    if (x < 0x80) { n = 1; c = x; }
    else if (x >= 0xc2 && x <= 0xdf && cont(i + 1, 0x80, 0xbf)) { n = 2; c = ((x & 0x1f) << 6) | (b[i + 1] & 0x3f); }
    else if (x >= 0xe0 && x <= 0xef) {
      const lo = x === 0xe0 ? 0xa0 : 0x80;
      const hi = x === 0xed ? 0x9f : 0xbf;
      if (cont(i + 1, lo, hi) && cont(i + 2, 0x80, 0xbf)) { n = 3; c = ((x & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f); }
    } else if (x >= 0xf0 && x <= 0xf4) {
      const lo = x === 0xf0 ? 0x90 : 0x80;
      const hi = x === 0xf4 ? 0x8f : 0xbf;
      if (cont(i + 1, lo, hi) && cont(i + 2, 0x80, 0xbf) && cont(i + 3, 0x80, 0xbf)) {
        n = 4;
        c = ((x & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
      }
    }
    if (n) { text += String.fromCodePoint(c); i += n; }
    else { out += escapeText(text) + `\\x${x.toString(16).padStart(2, "0")}`; text = ""; i += 1; }
  }
  return out + escapeText(text);
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB"];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return `${u ? n.toFixed(1) : n} ${units[u]}`;
}

// The look-alikes a search left out, each named as the command line names it: a file gone
// or changed since indexing (stale), one this user cannot read to check (unreadable).
function leftOut(doc) {
  const lines = [];
  const each = (key, say) => (doc[key] || []).forEach((p, i) => {
    const raw = (doc[`${key}_bytes`] || [])[i];
    lines.push(el("li", { class: "failed" }, say(Array.isArray(raw) ? escapeBytes(raw) : escapeText(String(p)))));
  });
  each("stale", (p) => `stale: ${p} is gone or changed since it was indexed; left out (\`${REFRESH}\` updates the index)`);
  each("unreadable", (p) => `unreadable: ${p} cannot be read by this user (permission denied), so it cannot be checked to be as indexed; left out`);
  return lines.length ? el("ul", { class: "steps", id: "left-out" }, lines) : null;
}

function card(img, extra) {
  // the name is cut to fit, never the distance beside it
  const caption = el("div", { class: "cap", title: named(img, "path") }, el("span", { class: "name" }, named(img, "name")));
  if (typeof img.distance === "number") caption.append(" ", el("span", { class: "dist" }, img.distance.toFixed(3)));
  const node = el("a", { class: "card", href: `#/image/${img.id}`, "data-id": img.id },
    el("img", { src: `/thumbs/${img.id}`, alt: named(img, "name"), loading: "lazy" }), caption);
  if (extra) node.prepend(extra);
  return node;
}

function grid(images, extraFor) {
  const g = el("div", { class: "grid", role: "list" }, images.map((i) => card(i, extraFor && extraFor(i))));
  g.addEventListener("keydown", (ev) => gridKeys(g, ev));
  return g;
}

// Arrow keys move between cards of a grid, row by row as laid out; Enter opens (native).
function gridKeys(g, ev) {
  const cards = [...g.querySelectorAll(".card")];
  const at = cards.indexOf(document.activeElement);
  if (at < 0) return;
  const top = cards[0].offsetTop;
  let cols = cards.findIndex((c) => c.offsetTop !== top);
  if (cols < 0) cols = cards.length;
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols }[ev.key];
  if (step === undefined) return;
  const next = cards[at + step];
  if (next) { next.focus(); ev.preventDefault(); }
}

function setActive(view) {
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
}

// #/  #/folder/ID/PAGE  #/image/ID  #/query  #/duplicates?SETTINGS  #/status  #/reports
async function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const mark = hash.indexOf("?");
  const parts = (mark < 0 ? hash : hash.slice(0, mark)).split("/");
  const params = new URLSearchParams(mark < 0 ? "" : hash.slice(mark + 1));
  try {
    switch (parts[0]) {
      case "image": setActive("collection"); return await imageView(Number(parts[1]));
      case "query": setActive("query"); return queryView();
      case "duplicates": setActive("duplicates"); return duplicatesView(params);
      case "status": setActive("status"); return await statusView();
      case "reports": setActive("reports"); return await reportsView();
      case "folder": setActive("collection"); return await collectionView(Number(parts[1]) || null, Number(parts[2]) || 0);
      default: setActive("collection"); return await collectionView(null, Number(parts[1]) || 0);
    }
  } catch (e) {
    failure(e);
  }
}

async function collectionView(folder, page) {
  const status = await api("/api/folders");
  const q = new URLSearchParams({ offset: page * PAGE_SIZE, limit: PAGE_SIZE });
  if (folder) q.set("folder", folder);
  const list = await api(`/api/images?${q}`);
  const base = folder ? `#/folder/${folder}` : "#/all";
  const folders = el("ul", { class: "folders" },
    el("li", {}, el("a", { href: "#/", class: folder ? null : "active" }, `All images (${status.images})`)),
    status.folders.map((f) => el("li", {}, el("a", { href: `#/folder/${f.id}/0`, class: folder === f.id ? "active" : null, title: named(f, "path") }, `${named(f, "path")} (${f.images})`))));
  const pages = Math.max(1, Math.ceil(list.total / PAGE_SIZE));
  const pager = el("div", { class: "pager" },
    el("button", { disabled: page <= 0, onclick: () => { location.hash = `${base}/${page - 1}`; } }, "← Previous"),
    el("span", {}, `page ${page + 1} of ${pages} · ${counted(list.total, "image", "images")}`),
    el("button", { disabled: page + 1 >= pages, onclick: () => { location.hash = `${base}/${page + 1}`; } }, "Next →"));
  const body = list.images.length ? grid(list.images)
    : list.total > 0
      ? el("p", { class: "note" }, `Page ${page + 1} is past the end: there ${pages === 1 ? "is 1 page" : `are ${pages} pages`}. `, el("a", { href: `${base}/0`, id: "first-page" }, "Go to the first page"))
      : el("p", { class: "note" }, `No images here yet: run \`${REFRESH} DIR\`.`);
  show(el("div", { class: "layout" },
    el("aside", {}, el("h2", {}, "Folders"), folders),
    el("section", {}, el("h1", {}, "Collection"), body, pager)));
  const first = main.querySelector(".card");
  if (first) first.focus({ preventScroll: true });
}

function facts(rows) {
  return el("table", { class: "facts" }, rows.filter((r) => r[1] !== null && r[1] !== undefined).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

async function imageView(id) {
  show(el("p", { class: "note" }, "Finding look-alikes…"));
  const doc = await api(`/api/images/${id}`);
  const img = doc.image;
  const large = el("img", { class: "large", src: img.viewable ? `/files/${id}` : `/thumbs/${id}`, alt: named(img, "name") });
  large.addEventListener("error", () => { if (!large.src.endsWith(`/thumbs/${id}`)) large.src = `/thumbs/${id}`; }, { once: true });
  const hits = doc.lookalikes.hits || [];
  show(
    el("h1", {}, named(img, "name")),
    el("div", { class: "detail" },
      el("div", {}, large),
      el("div", {},
        facts([["path", named(img, "path")], ["size", `${img.width} × ${img.height}`], ["file", `${bytes(img.bytes)} ${img.format}`],
          ["modified", img.modified_unix === null ? null : new Date(img.modified_unix * 1000).toLocaleString()]]),
        img.viewable
          ? el("p", {}, el("a", { href: `/files/${id}`, target: "_blank", rel: "noopener" }, "Open the original"))
          : el("p", { class: "note", id: "not-viewable" }, `The original is not shown: ${img.why_not_viewable || "the server does not serve this file"}.`))),
    el("h2", {}, `Look-alikes (${hits.length})`),
    doc.lookalikes.note ? el("p", { class: "note" }, doc.lookalikes.note) : null,
    leftOut(doc.lookalikes),
    hits.length ? grid(hits) : el("p", { class: "note" }, "No look-alikes found."),
  );
  const first = main.querySelector(".grid .card");
  if (first) first.focus({ preventScroll: true });
}

function queryView() {
  const input = el("input", { type: "file", accept: "image/*", id: "example" });
  const zone = el("div", { class: "drop", id: "drop" },
    el("p", {}, "Drop an image here, or ", el("label", { for: "example" }, "choose one: "), input),
    el("p", { class: "note" }, "The file is compared in memory and never saved."));
  const results = el("section", { id: "results" });
  function showResults(doc, name) {
    put(results, el("h2", {}, `Look-alikes of ${escapeText(name)} (${doc.hits.length})`),
      doc.indexed ? el("p", { class: "note" }, "This image is in the index.") : null,
      doc.note ? el("p", { class: "note" }, doc.note) : null,
      leftOut(doc),
      doc.hits.length ? grid(doc.hits) : el("p", { class: "note" }, "No look-alikes found."));
  }
  function preview(file) {
    zone.querySelector(".preview")?.remove();
    const img = el("img", { class: "preview", src: URL.createObjectURL(file), alt: "your example" });
    // a format the browser cannot show (HEIC in most) is said so, not shown as a broken image
    img.addEventListener("error", () => img.replaceWith(el("p", { class: "note preview", id: "no-preview" },
      `This browser cannot show ${escapeText(file.name)}; it is searched all the same.`)), { once: true });
    zone.append(img);
  }
  async function search(file) {
    preview(file);
    put(results, el("p", { class: "note" }, "Searching…"));
    try {
      const doc = await api("/api/query", { method: "POST", body: file, headers: { "content-type": "application/octet-stream" } });
      showResults(doc, file.name);
      // kept with this history entry, so that Back from a result shows them again
      history.replaceState(Object.assign({}, history.state, { search: { doc, name: file.name } }), "");
    } catch (e) {
      put(results, el("p", { class: "error", role: "alert" }, String(e.message)));
    }
  }
  const kept = history.state && history.state.search;
  if (kept) showResults(kept.doc, kept.name);
  input.addEventListener("change", () => input.files[0] && search(input.files[0]));
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    if (!ev.dataTransfer.files[0]) return;
    // the file box names the dropped file, not one chosen before
    try { input.files = ev.dataTransfer.files; } catch (_) { input.value = ""; }
    search(ev.dataTransfer.files[0]);
  });
  show(el("h1", {}, "Search by example"), zone, results);
}

function select(id, options, value) {
  return el("select", { id }, options.map(([v, label]) => el("option", { value: v, selected: v === value }, label)));
}

const SIMILARITIES = [["strict", "strict"], ["default", "default"], ["loose", "loose"]];
const KEEP_RULES = [["best", "keep the best"], ["newest", "keep the newest"], ["oldest", "keep the oldest"], ["shortest-path", "keep the shortest path"]];
const ACTIONS = [["trash", "move copies to the trash"], ["move-to", "move copies to a folder"], ["hardlink", "replace exact copies by hard links"], ["delete", "delete copies for good"]];

// The settings are read from the page's address, the groups left unticked from its history
// entry: Back, Forward and a reload bring the page back as the user left it. A delete's
// confirmation is never kept.
function duplicatesView(params) {
  const chosen = (name, options, fallback) => (options.some(([v]) => v === params.get(name)) ? params.get(name) : fallback);
  const similarity = select("similarity", SIMILARITIES, chosen("similarity", SIMILARITIES, "default"));
  const keep = select("keep", KEEP_RULES, chosen("keep", KEEP_RULES, "best"));
  const list = el("section", { id: "groups" });
  const action = select("action", ACTIONS, chosen("action", ACTIONS, "trash"));
  const target = el("input", { type: "text", id: "target", placeholder: "/absolute/folder/for/copies", size: 34, value: params.get("target"), hidden: action.value !== "move-to" });
  const confirm = el("label", { hidden: action.value !== "delete" }, el("input", { type: "checkbox", id: "confirm-delete" }), " yes, delete for good");
  const dry = el("button", { id: "dry-run", class: "primary" }, "Dry run");
  const apply = el("button", { id: "apply", class: "danger", disabled: true }, "Apply");
  const undo = el("button", { id: "undo" }, "Undo last run");
  const outcome = el("section", { id: "outcome" });
  const toActions = el("button", { id: "to-actions", onclick: () => action.focus() }, "Go to the actions");
  const unticked = new Set((history.state && history.state.unticked) || []);
  let planned = null;
  let groups = [];
  let busy = false;

  function remember() {
    const p = new URLSearchParams({ similarity: similarity.value, keep: keep.value, action: action.value });
    if (action.value === "move-to" && target.value) p.set("target", target.value);
    history.replaceState(Object.assign({}, history.state, { unticked: [...unticked] }), "", `#/duplicates?${p}`);
  }

  // One request at a time: while Dry run, Apply or Undo waits for its answer the three are
  // disabled, so a double click sends one request and no late refusal hides a run's outcome.
  async function alone(work) {
    if (busy) return;
    busy = true;
    for (const b of [dry, apply, undo]) b.disabled = true;
    try {
      await work();
    } finally {
      busy = false;
      dry.disabled = false;
      undo.disabled = false;
      apply.disabled = !planned;
    }
  }

  function settings() {
    const keepers = [...list.querySelectorAll("input[data-keeper]:checked")].map((c) => Number(c.dataset.keeper));
    // a target goes with move-to only: the server refuses it with another action
    const folder = action.value === "move-to" ? target.value.trim() || null : null;
    return { action: action.value, target: folder, similarity: similarity.value, keep: keep.value, keepers };
  }
  function invalidate() { planned = null; apply.disabled = true; }
  action.addEventListener("change", () => {
    target.hidden = action.value !== "move-to";
    confirm.hidden = action.value !== "delete";
    invalidate();
    remember();
  });
  target.addEventListener("input", () => { invalidate(); remember(); });

  async function load() {
    invalidate();
    put(outcome);
    put(list, el("p", { class: "note" }, "Comparing…"));
    try {
      const doc = await api(`/api/duplicates?${new URLSearchParams({ similarity: similarity.value, keep: keep.value })}`);
      groups = doc.groups;
      const summary = el("p", {}, `${counted(doc.groups.length, "group", "groups")}, ${counted(doc.copies, "copy", "copies")}, ${bytes(doc.reclaimable_bytes)} to reclaim among ${counted(doc.images, "image", "images")}.`);
      const items = doc.groups.map((g, n) => {
        const members = [g.keep, ...g.copies].map((m) => Object.assign({}, doc.shown[m.id], { distance: m.exact ? undefined : m.distance }));
        const box = el("input", { type: "checkbox", checked: !unticked.has(g.keep.id), "data-keeper": g.keep.id });
        box.addEventListener("change", () => {
          if (box.checked) unticked.delete(g.keep.id); else unticked.add(g.keep.id);
          invalidate();
          remember();
        });
        return el("div", { class: "group" },
          el("label", {}, box, ` group ${n + 1}: keep ${named(doc.shown[g.keep.id], "name")}, ${counted(g.copies.length, "copy", "copies")}`),
          grid(members, (m) => {
            if (m.id === g.keep.id) return el("span", { class: "badge" }, "keep");
            const c = g.copies.find((c) => c.id === m.id);
            // a copy no action would touch, with the reason
            if (c.left_alone) return el("span", { class: "badge", title: c.left_alone }, `left alone: ${c.left_alone}`);
            return el("span", { class: "badge copy" }, c.exact ? "exact copy" : "copy");
          }));
      });
      const gone = doc.gone ? el("p", { class: "note" }, `${counted(doc.gone, "indexed image is", "indexed images are")} gone from disk and left out; run \`${REFRESH}\` to bring the index up to date.`) : null;
      put(list, summary, gone, ...(items.length ? items : [el("p", { class: "note" }, "No duplicates at this setting.")]));
    } catch (e) {
      put(list, el("p", { class: "error", role: "alert" }, String(e.message)));
    }
  }

  // an undo's steps in the words of `lookalike undo`
  const UNDO_WORDS = { done: "restored", skipped: "not restored" };

  function showSteps(doc, heading, words = {}) {
    const counts = {};
    const items = doc.steps.map((s) => {
      const said = s.already_back ? "already back" : words[s.outcome] || s.outcome.replace("_", " ");
      counts[said] = (counts[said] || 0) + 1;
      const text = s.already_back
        ? `already back: ${named(s, "path")}: it is already back in place`
        : `${said}: ${named(s, "path")}${s.target ? " → " + named(s, "target") : ""}${s.reason ? " (" + s.reason + ")" : ""}`;
      return el("li", { class: s.outcome }, text);
    });
    const freed = doc.freed_bytes === undefined ? "" : `; ${bytes(doc.freed_bytes)} freed`;
    const summary = (Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ") || "nothing to do") + freed;
    const warnings = (doc.warnings || []).map((w) => el("p", { class: "error", role: "alert" }, `Warning: ${w}`));
    put(outcome, el("h2", {}, heading), warnings, el("p", { id: "outcome-summary" }, summary), el("ul", { class: "steps" }, items));
  }

  dry.addEventListener("click", () => alone(async () => {
    try {
      const s = settings();
      const doc = await api("/api/duplicates/action", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(Object.assign({ apply: false }, s)) });
      planned = { settings: JSON.stringify(s), plan: doc.plan };
      apply.disabled = false;
      showSteps(doc, "Dry run: nothing changed yet");
    } catch (e) { put(outcome, el("p", { class: "error", role: "alert" }, String(e.message))); }
  }));
  apply.addEventListener("click", () => alone(async () => {
    const s = settings();
    if (!planned || planned.settings !== JSON.stringify(s)) { invalidate(); return; }
    // the confirmation goes with a delete only: the server refuses it with another action
    const body = Object.assign({ apply: true, plan: planned.plan }, s);
    if (s.action === "delete") body.confirm_delete = document.getElementById("confirm-delete").checked;
    try {
      const doc = await api("/api/duplicates/action", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      invalidate();
      showSteps(doc, `Done (Undo last run reverses moves, trash and hard links, not a delete; run \`${REFRESH}\` to update the index)`);
    } catch (e) { invalidate(); put(outcome, el("p", { class: "error", role: "alert" }, String(e.message))); }
  }));
  undo.addEventListener("click", () => alone(async () => {
    try {
      const doc = await api("/api/undo", { method: "POST" });
      if (!doc.undone) put(outcome, el("p", { class: "note" }, doc.undone_already ? "Nothing to undo: the last applied run was undone already." : "Nothing to undo."));
      else if (doc.undone.closed) showSteps(doc.undone, `Undone: ${doc.undone.action}`, UNDO_WORDS);
      else {
        const lines = doc.undone.damaged_lines || [];
        const damaged = lines.length ? `; journal ${lines.length === 1 ? "line" : "lines"} ${lines.join(", ")} could not be read` : "";
        showSteps(doc.undone, `Partly undone: ${doc.undone.action}${damaged}. What is not back is listed: clear its way and press Undo last run again`, UNDO_WORDS);
      }
    } catch (e) { put(outcome, el("p", { class: "error", role: "alert" }, String(e.message))); }
  }));
  for (const s of [similarity, keep]) s.addEventListener("change", () => { remember(); load(); });

  show(el("h1", {}, "Duplicates"),
    el("div", { class: "controls" }, el("label", {}, "Similarity ", similarity), el("label", {}, "Keeper ", keep), toActions),
    list,
    el("div", { class: "controls", id: "actions" }, el("label", {}, "Action ", action), target, confirm, dry, apply, undo),
    outcome);
  remember();
  load();
}

function ago(t) {
  const s = Math.max(0, Math.floor(Date.now() / 1000) - t);
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.floor(s / 60)} min ago`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

// The last index run as `lookalike status` words it, by its `state`: an unfinished run
// (no outcome) is running only while its own process writes, else it was killed.
function runLine(run, s) {
  const started = ago(run.started_at);
  const ended = run.finished_at === null || run.finished_at === undefined ? started : ago(run.finished_at);
  switch (run.state) {
    case "complete": return `complete, ${ended}`;
    case "interrupted": return `interrupted ${ended}; \`${run.resume}\` resumes it`;
    case "error": return `failed ${ended}: ${typeof run.summary === "string" ? escapeText(run.summary) : "no message"}`;
    case "running": return `started ${started} and running now`;
    case "killed":
      return s.writer_running && s.writer_command
        ? `started ${started} and interrupted (its process was killed); \`lookalike ${escapeText(s.writer_command)}\` is running now (process ${s.writer_pid}), and \`${run.resume}\` resumes the run once it is done`
        : `started ${started} and interrupted (its process was killed); \`${run.resume}\` resumes it`;
    case "unknown": return `started ${started}; a lookalike process is writing to the index now: this run, or a command after it if it was killed`;
    default: return `${run.state}, started ${started}`;
  }
}

async function statusView() {
  const s = await api("/api/status");
  const run = s.last_run;
  show(el("h1", {}, "Status"),
    facts([["index", named(s, "index_dir")], ["images", s.images], ["profile", `${s.profile} (${s.working_size}-pixel working image)`],
      ["graph", s.hnsw], ["on disk", bytes(s.bytes_on_disk)], ["data version", s.data_version],
      ["last run", run ? runLine(run, s) : "none"]]),
    el("h2", {}, "Folders"),
    el("ul", {}, s.folders.map((f) => el("li", {}, `${named(f, "path")}: ${counted(f.images, "image", "images")}`))),
    el("h2", {}, `Files that could not be indexed (${s.failures.length})`),
    el("ul", { class: "steps" }, s.failures.map((f) => el("li", { class: "failed" }, `${named(f, "path")}: ${f.reason}`))));
}

async function reportsView() {
  const doc = await api("/api/reports");
  show(el("h1", {}, "Eval reports"),
    doc.reports.length
      ? el("ul", {}, doc.reports.map((r) => el("li", {}, el("a", { href: `/reports/${r.id}/index.html`, target: "_blank", rel: "noopener" }, named(r, "name")), el("span", { class: "note" }, ` ${named(r, "path")}`))))
      : el("p", { class: "note" }, "No reports: start the server with --reports DIR, where DIR holds `lookalike eval --report` outputs."));
}

window.addEventListener("hashchange", route);
route();
