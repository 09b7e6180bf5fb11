// surd review page: keyboard-driven accept/reject over a lazily loaded, paged dataset export.
// Plain JS, no build step, no network beyond the review directory. Works from file:// (decisions in
// localStorage + Export button) and from `surd review serve` (decisions saved to REVIEW_DIR/decisions.json).
"use strict";

(function () {
  const IDX = window.SURD_INDEX;
  const FORMAT = "surd-review-decisions";
  const $ = (id) => document.getElementById(id);

  const state = {
    served: false,
    decisions: new Map(), // key -> {decision: "accept"|"reject", note: string}
    notes: new Map(), // notes typed on undecided samples, attached when they are decided
    counts: { accept: 0, reject: 0 },
    view: [], // sample indices passing the filter, in key order
    pos: 0, // cursor within view
    pageSize: 24,
    undo: [],
    chunks: new Map(),
    waiting: new Map(),
    renderToken: 0,
    save: { dirty: false, inFlight: false, timer: null, error: null },
  };
  window.SURD_STATE = state; // for tests and for poking around in the console

  // ------------------------------------------------------------------ data chunks (script tags: file:// safe)
  window.surdChunk = function (i, rows) {
    state.chunks.set(i, rows);
    const w = state.waiting.get(i);
    if (w) { state.waiting.delete(i); w.resolve(); }
  };

  function loadChunk(i) {
    if (state.chunks.has(i)) return Promise.resolve();
    if (state.waiting.has(i)) return state.waiting.get(i).promise;
    const w = {};
    w.promise = new Promise((resolve, reject) => { w.resolve = resolve; w.reject = reject; });
    state.waiting.set(i, w);
    const s = document.createElement("script");
    s.src = "data/chunk_" + String(i).padStart(4, "0") + ".js";
    s.onerror = () => { state.waiting.delete(i); w.reject(new Error("cannot load " + s.src)); };
    document.head.appendChild(s);
    return w.promise;
  }

  function row(idx) {
    const chunk = state.chunks.get(Math.floor(idx / IDX.chunk_size));
    return chunk ? chunk[idx % IDX.chunk_size] : null;
  }

  // ------------------------------------------------------------------ scores and filters
  function score(idx, field) {
    if (!IDX.scores) return null;
    const s = IDX.scores.simple[idx], c = IDX.scores.complex[idx];
    if (field === "simple") return s;
    if (field === "complex") return c;
    return s === null || c === null ? null : s - c;
  }

  function fmt(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(3); }

  function applyFilter(keepKey) {
    const status = $("f-status").value, field = $("f-field").value;
    const lo = $("f-min").value === "" ? null : Number($("f-min").value);
    const hi = $("f-max").value === "" ? null : Number($("f-max").value);
    state.pageSize = Number($("f-page-size").value);
    const view = [];
    for (let i = 0; i < IDX.n; i++) {
      const d = state.decisions.get(IDX.keys[i]);
      if (status === "undecided" ? d : status !== "all" && (!d || d.decision !== status)) continue;
      if (lo !== null || hi !== null) {
        const v = score(i, field);
        if (v === null || (lo !== null && v < lo) || (hi !== null && v > hi)) continue;
      }
      view.push(i);
    }
    state.view = view;
    const at = keepKey === undefined ? -1 : view.indexOf(IDX.keys.indexOf(keepKey));
    state.pos = at >= 0 ? at : 0;
    render();
  }

  // ------------------------------------------------------------------ rendering: only the visible page
  function pageOf(pos) { return Math.floor(pos / state.pageSize); }

  async function render() {
    const token = ++state.renderToken;
    const page = pageOf(state.pos), start = page * state.pageSize;
    const items = state.view.slice(start, start + state.pageSize);
    const needed = [...new Set(items.map((i) => Math.floor(i / IDX.chunk_size)))];
    try {
      await Promise.all(needed.map(loadChunk));
    } catch (err) {
      $("grid").textContent = String(err);
      return;
    }
    if (token !== state.renderToken) return; // a newer render started while chunks loaded
    const grid = $("grid");
    grid.replaceChildren(...items.map((idx, j) => card(idx, start + j)));
    const pages = Math.max(1, Math.ceil(state.view.length / state.pageSize));
    $("page-info").textContent = "page " + (page + 1) + " / " + pages + " · " + state.view.length + " shown";
    updateCurrent();
    updateProgress();
    if (!window.SURD_FIRST_PAGE_MS) {
      window.SURD_FIRST_PAGE_MS = performance.now();
      document.body.dataset.ready = "1";
    }
    const next = state.view[start + state.pageSize];
    if (next !== undefined) loadChunk(Math.floor(next / IDX.chunk_size)).catch(() => {});
  }

  const el = SurdKit.el; // shared page machinery: surd/review/static/sitekit.js

  function card(idx, pos) {
    const r = row(idx), key = IDX.keys[idx];
    const c = el("article", "card");
    c.dataset.key = key;
    c.dataset.pos = pos;
    const img = el("img");
    img.loading = "lazy";
    img.alt = r.s;
    img.src = r.t || r.i;
    c.append(img, el("div", "status"), el("p", "simple", r.s), el("p", "complex", r.c));
    if (IDX.scores) c.append(el("p", "scores", "simple " + fmt(score(idx, "simple")) + " · complex " + fmt(score(idx, "complex"))));
    c.append(el("p", "note"));
    c.addEventListener("click", () => { state.pos = pos; updateCurrent(); });
    paintCard(c);
    return c;
  }

  function paintCard(c) {
    const d = state.decisions.get(c.dataset.key);
    c.classList.toggle("accept", !!d && d.decision === "accept");
    c.classList.toggle("reject", !!d && d.decision === "reject");
    c.dataset.decision = d ? d.decision : "";
    c.querySelector(".status").textContent = d ? (d.decision === "accept" ? "✓ accepted" : "✗ rejected") : "undecided";
    c.querySelector(".note").textContent = d && d.note ? "“" + d.note + "”" : "";
  }

  function currentIdx() { return state.view[state.pos]; }

  function updateCurrent() {
    const idx = currentIdx();
    for (const c of $("grid").children) {
      const on = Number(c.dataset.pos) === state.pos;
      c.classList.toggle("current", on);
      if (on) c.scrollIntoView({ block: "nearest" });
    }
    const detail = $("detail");
    if (idx === undefined || !row(idx)) { detail.hidden = true; return; }
    detail.hidden = false;
    const r = row(idx), key = IDX.keys[idx], d = state.decisions.get(key);
    $("d-image").src = r.i || r.t;
    $("d-image").alt = r.s;
    $("d-simple").textContent = r.s;
    $("d-complex").textContent = r.c;
    $("d-scores").textContent = IDX.scores ? "CLIP: simple " + fmt(score(idx, "simple")) + " · complex " +
      fmt(score(idx, "complex")) + " · margin " + fmt(score(idx, "margin")) : "no CLIP scores";
    $("d-key").textContent = "key " + key;
    $("d-status").textContent = d ? d.decision + "ed" : "undecided";
    $("d-status").dataset.decision = d ? d.decision : "";
    $("d-note").value = d ? d.note : (state.notes.get(key) || "");
  }

  function updateProgress() {
    const done = state.counts.accept + state.counts.reject;
    $("progress-text").textContent = done + " / " + IDX.n + " decided · " + state.counts.accept + " accepted · " +
      state.counts.reject + " rejected";
    $("bar-accept").style.width = (100 * state.counts.accept / Math.max(1, IDX.n)) + "%";
    $("bar-reject").style.width = (100 * state.counts.reject / Math.max(1, IDX.n)) + "%";
  }

  // ------------------------------------------------------------------ decisions, undo, navigation
  function setDecision(key, value) {
    const old = state.decisions.get(key);
    if (old) state.counts[old.decision]--;
    if (value) {
      state.decisions.set(key, value);
      state.counts[value.decision]++;
    } else {
      state.decisions.delete(key);
    }
    const c = $("grid").querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (c) paintCard(c);
    persist();
    updateProgress();
  }

  function decide(decision) {
    const idx = currentIdx();
    if (idx === undefined) return;
    const key = IDX.keys[idx], old = state.decisions.get(key);
    const note = $("d-note").value.trim();
    state.undo.push({ key, prev: old, pos: state.pos });
    state.notes.delete(key);
    setDecision(key, { decision, note });
    move(1);
  }

  function undo() {
    const last = state.undo.pop();
    if (!last) return;
    setDecision(last.key, last.prev);
    const at = state.view.indexOf(IDX.keys.indexOf(last.key));
    goTo(at >= 0 ? at : state.pos);
  }

  function saveNote() {
    const idx = currentIdx();
    if (idx === undefined) return;
    const key = IDX.keys[idx], d = state.decisions.get(key), note = $("d-note").value.trim();
    if (d && d.note !== note) {
      state.undo.push({ key, prev: d, pos: state.pos });
      setDecision(key, { decision: d.decision, note });
    } else if (!d) {
      state.notes.set(key, note);
    }
  }

  function goTo(pos) {
    if (!state.view.length) return;
    pos = Math.max(0, Math.min(state.view.length - 1, pos));
    const samePage = pageOf(pos) === pageOf(state.pos);
    state.pos = pos;
    if (samePage) updateCurrent(); else render();
  }

  function move(delta) { goTo(state.pos + delta); }

  // ------------------------------------------------------------------ persistence
  function toDocument() {
    const decisions = {};
    for (const [k, d] of [...state.decisions.entries()].sort()) decisions[k] = { decision: d.decision, note: d.note };
    return { format: FORMAT, version: 1, decisions };
  }

  function loadDocument(doc, source) {
    if (!doc || doc.format !== FORMAT || typeof doc.decisions !== "object") {
      throw new Error(source + " is not a surd decisions file");
    }
    state.decisions.clear();
    state.counts = { accept: 0, reject: 0 };
    const known = new Set(IDX.keys);
    for (const [k, d] of Object.entries(doc.decisions)) {
      if (!known.has(k) || (d.decision !== "accept" && d.decision !== "reject")) continue;
      state.decisions.set(k, { decision: d.decision, note: d.note || "" });
      state.counts[d.decision]++;
    }
  }

  function setSaveStatus(s, text) { $("save-status").dataset.state = s; $("save-status").textContent = text; }

  const saver = SurdKit.createSaver({
    save: state.save, apiPath: "api/decisions", served: () => state.served, toDocument,
    storageKey: () => "surd-review:" + IDX.site_id, onStatus: setSaveStatus,
    toStorage: () => {
      const compact = {};
      for (const [k, d] of state.decisions) compact[k] = d.note ? [d.decision, d.note] : d.decision;
      return compact;
    },
  });
  const persist = saver.persist;

  function loadLocal() {
    const stored = saver.loadStored();
    if (!stored) return;
    const decisions = {};
    for (const [k, v] of Object.entries(stored)) {
      decisions[k] = Array.isArray(v) ? { decision: v[0], note: v[1] } : { decision: v, note: "" };
    }
    loadDocument({ format: FORMAT, decisions }, "browser storage");
  }

  async function detectServer() {
    const doc = await SurdKit.fetchServerDocument("api/decisions");
    if (doc === null) return false;
    loadDocument(doc, "server");
    return true;
  }

  function exportDecisions() { SurdKit.downloadJSON(toDocument(), "decisions-" + IDX.site_id + ".json"); }

  // ------------------------------------------------------------------ keyboard and controls
  function bindKeys() {
    $("d-note").addEventListener("keydown", (e) => {
      if ((e.key === "Enter" && !e.shiftKey) || e.key === "Escape") { e.preventDefault(); saveNote(); e.target.blur(); }
    });
    SurdKit.bindKeys({
      a: () => decide("accept"), r: () => decide("reject"), u: undo,
      arrowright: () => move(1), arrowdown: () => move(1), j: () => move(1),
      arrowleft: () => move(-1), arrowup: () => move(-1), k: () => move(-1),
      pagedown: () => goTo((pageOf(state.pos) + 1) * state.pageSize),
      pageup: () => goTo((pageOf(state.pos) - 1) * state.pageSize),
      n: () => $("d-note").focus(),
    }, { "ctrl+z": undo });
  }

  function wire() {
    bindKeys();
    $("d-accept").onclick = () => decide("accept");
    $("d-reject").onclick = () => decide("reject");
    $("d-undo").onclick = undo;
    $("d-note").addEventListener("change", saveNote);
    $("export").onclick = exportDecisions;
    $("f-apply").onclick = () => applyFilter();
    for (const id of ["f-status", "f-page-size"]) $(id).onchange = () => applyFilter(IDX.keys[currentIdx()]);
    $("prev-page").onclick = () => goTo((pageOf(state.pos) - 1) * state.pageSize);
    $("next-page").onclick = () => goTo((pageOf(state.pos) + 1) * state.pageSize);
    $("load").onchange = async (e) => {
      const file = e.target.files[0];
      if (!file) return;
      try { loadDocument(JSON.parse(await file.text()), file.name); persist(); applyFilter(); }
      catch (err) { alert(String(err)); }
    };
  }

  async function main() {
    if (!IDX) { document.body.textContent = "data/index.js is missing: re-export with `surd review export`."; return; }
    document.title = "surd review · " + IDX.title;
    $("title").textContent = "surd review · " + IDX.title;
    if (!IDX.scores) $("score-filter").hidden = true;
    wire();
    state.served = await detectServer();
    if (!state.served) loadLocal();
    $("mode").textContent = state.served ? "· saving to the review server" : "· file mode: decisions stay in this browser, use Export";
    setSaveStatus(state.served ? "saved" : "idle", state.served ? "saved to disk" : "");
    applyFilter();
  }

  main();
})();
