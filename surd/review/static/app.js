// surd review page: keyboard-driven accept/reject over a lazily loaded, paged dataset export.
// Plain JS, no build step, no network beyond the review directory. Works from file:// (decisions in
// localStorage + Export button) and from `surd review serve`, where several tabs or reviewers share one site:
// each change is sent as {decision, note, base revision}; the server refuses a change whose key moved on since
// this tab saw it (409), and the page then shows the conflict for the reviewer to settle. The machinery it shares
// with the eval study page (sending with retries, browser storage, keys, downloads) is in sitekit.js.
"use strict";

(function () {
  const IDX = window.SURD_INDEX;
  const FORMAT = "surd-review-decisions";
  const MAX_BATCH = 200; // changes per request: well under the server's body limit
  const $ = (id) => document.getElementById(id);
  const KNOWN = new Set(IDX ? IDX.keys : []);

  const state = {
    served: false,
    reviewer: "",
    decisions: new Map(), // key -> {decision: "accept"|"reject", note, reviewer}
    revs: new Map(), // key -> the server's revision this tab last saw (0 or absent: never decided)
    pending: new Map(), // key -> change not yet sent: {decision (or "undecided"), note, base}
    inflight: new Map(), // the changes of the request on the wire
    conflicts: new Map(), // key -> {mine: change, theirs: server record}
    seq: 0, // the server's change counter this tab has caught up with
    notes: new Map(), // notes typed on undecided samples, attached when they are decided
    counts: { accept: 0, reject: 0 },
    view: [], // sample indices passing the filter, in key order
    pos: 0, // cursor within view
    pageSize: 24,
    undo: [],
    chunks: new Map(),
    waiting: new Map(),
    renderToken: 0,
    save: { inFlight: false, timer: null, error: null, backoff: 0 },
    poll: { timer: null, ms: 4000, stopped: false },
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

  function opinionText(ops) {
    return ops.map((o) => o[0] + ": " + o[1] + (o[2] ? " “" + o[2] + "”" : "")).join(" · ");
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

  const el = SurdKit.el;

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
    if (r.o) c.append(el("p", "opinions", opinionText(r.o)));
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
    c.classList.toggle("conflict", state.conflicts.has(c.dataset.key));
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
    $("d-opinions").textContent = r.o ? "Reviewers: " + opinionText(r.o) : "";
    $("d-by").textContent = d && d.reviewer ? "decided by " + d.reviewer : "";
  }

  function updateProgress() {
    const done = state.counts.accept + state.counts.reject;
    $("progress-text").textContent = done + " / " + IDX.n + " decided · " + state.counts.accept + " accepted · " +
      state.counts.reject + " rejected";
    $("bar-accept").style.width = (100 * state.counts.accept / Math.max(1, IDX.n)) + "%";
    $("bar-reject").style.width = (100 * state.counts.reject / Math.max(1, IDX.n)) + "%";
  }

  // ------------------------------------------------------------------ decisions, undo, navigation
  function setLocal(key, value, bulk) {
    const old = state.decisions.get(key);
    if (old) state.counts[old.decision]--;
    if (value) {
      state.decisions.set(key, value);
      state.counts[value.decision]++;
    } else {
      state.decisions.delete(key);
    }
    if (bulk) return; // many at once (load, poll): the caller repaints once
    const c = $("grid").querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (c) paintCard(c);
    updateProgress();
  }

  function repaint() { // not updateCurrent: it would scroll and reset a note being typed
    for (const c of $("grid").children) paintCard(c);
    updateProgress();
  }

  function setDecision(key, value) {
    if (value) value = { decision: value.decision, note: value.note, reviewer: state.reviewer };
    setLocal(key, value);
    persist(key, value);
  }

  function needName() {
    if (!state.served || state.reviewer) return false;
    setSaveStatus("error", "enter your name (top right) before deciding");
    $("reviewer").focus();
    return true;
  }

  function decide(decision) {
    const idx = currentIdx();
    if (idx === undefined || needName()) return;
    const key = IDX.keys[idx], old = state.decisions.get(key);
    const note = $("d-note").value.trim();
    state.undo.push({ key, prev: old, pos: state.pos });
    state.notes.delete(key);
    setDecision(key, { decision, note });
    move(1);
  }

  function undo() {
    const last = state.undo.pop();
    if (!last || needName()) return;
    setDecision(last.key, last.prev); // undefined: an explicit "undecided" goes to the server
    const at = state.view.indexOf(IDX.keys.indexOf(last.key));
    goTo(at >= 0 ? at : state.pos);
  }

  function saveNote() {
    const idx = currentIdx();
    if (idx === undefined) return;
    const key = IDX.keys[idx], d = state.decisions.get(key), note = $("d-note").value.trim();
    if (d && d.note !== note) {
      if (needName()) return;
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

  // ------------------------------------------------------------------ persistence: browser storage (file://)
  const storageKey = "surd-review:" + IDX.site_id;
  const nameKey = "surd-review:reviewer";

  function saveLocal() {
    const compact = {};
    for (const [k, d] of state.decisions) compact[k] = d.note ? [d.decision, d.note] : d.decision;
    SurdKit.storeLocal(storageKey, compact, setSaveStatus, "decisions");
  }

  function loadLocal() {
    const stored = SurdKit.loadLocal(storageKey);
    if (!stored) return;
    for (const [k, v] of Object.entries(stored)) {
      const d = Array.isArray(v) ? { decision: v[0], note: v[1] } : { decision: v, note: "" };
      if (KNOWN.has(k) && (d.decision === "accept" || d.decision === "reject")) setLocal(k, d, true);
    }
  }

  function persist(key, value) {
    if (!state.served) { saveLocal(); return; }
    const prev = state.pending.get(key);
    const base = prev ? prev.base : (state.revs.get(key) || 0); // what this tab saw when the reviewer decided
    state.pending.set(key, { decision: value ? value.decision : "undecided", note: value ? value.note : "", base });
    sender.queued();
  }

  // ------------------------------------------------------------------ persistence: the review server
  function requeue(batch) {
    for (const [k, c] of batch) if (!state.pending.has(k) && !state.conflicts.has(k)) state.pending.set(k, c);
  }

  function ownWrite(key, rev, sent) {
    state.revs.set(key, rev);
    const next = state.pending.get(key); // decided again while the request was on the wire: it builds on ours
    if (next && next.base === sent.base) next.base = rev;
  }

  function addConflicts(batch, conflicts) {
    for (const [k, theirs] of Object.entries(conflicts || {})) {
      const mine = state.pending.get(k) || batch.get(k);
      state.pending.delete(k);
      batch.delete(k);
      state.conflicts.set(k, { mine, theirs });
    }
    requeue(batch);
    renderConflicts();
  }

  const sender = SurdKit.createSender({
    apiPath: "api/decisions", save: state.save, onStatus: setSaveStatus, served: () => state.served,
    blocked: () => (state.reviewer ? "" : "enter your name (top right)"),
    pending: () => state.pending.size > 0,
    take: () => {
      const batch = new Map([...state.pending].slice(0, MAX_BATCH));
      for (const k of batch.keys()) state.pending.delete(k);
      state.inflight = batch;
      return { format: FORMAT, version: 1, reviewer: state.reviewer, decisions: Object.fromEntries(batch) };
    },
    answer: (res, data) => {
      if (res.ok) {
        for (const [k, rev] of Object.entries(data.revs || {})) ownWrite(k, rev, state.inflight.get(k));
        return true;
      }
      if (res.status === 409) { addConflicts(state.inflight, data.conflicts); return true; }
      return false;
    },
    lost: () => requeue(state.inflight),
    done: () => { state.inflight = new Map(); },
    settled: () => (state.conflicts.size ? ["error", state.conflicts.size + " conflict(s) to settle"]
      : ["saved", "saved to disk"]),
    unsaved: () => state.pending.size > 0 || state.conflicts.size > 0,
  });
  const flush = sender.flush;

  function applyRecords(decisions) {
    // changes made elsewhere; a key this tab is still sending or settling waits for that outcome instead
    let changed = 0;
    for (const [key, rec] of Object.entries(decisions || {})) {
      if (!KNOWN.has(key) || rec.rev <= (state.revs.get(key) || 0)) continue;
      if (state.pending.has(key) || state.inflight.has(key) || state.conflicts.has(key)) continue;
      state.revs.set(key, rec.rev);
      const chosen = rec.decision === "accept" || rec.decision === "reject";
      setLocal(key, chosen ? { decision: rec.decision, note: rec.note || "", reviewer: rec.reviewer || "" } : undefined, true);
      changed++;
    }
    return changed;
  }

  async function poll() {
    clearTimeout(state.poll.timer);
    if (!state.served || state.poll.stopped) return;
    try {
      const res = await fetch("api/decisions?since=" + state.seq, { cache: "no-store" });
      if (res.ok) {
        const doc = await res.json();
        if (applyRecords(doc.decisions)) repaint();
        state.seq = Math.max(state.seq, doc.seq || 0);
      }
      const st = await fetch("api/status", { cache: "no-store" });
      if (st.ok) renderTeam(await st.json());
    } catch (err) {
      // the server may be restarting; the next poll tries again
    }
    state.poll.timer = setTimeout(poll, state.poll.ms);
  }

  async function detectServer() {
    const doc = await SurdKit.fetchServerDocument("api/decisions", FORMAT);
    if (!doc) return false;
    applyRecords(doc.decisions);
    state.seq = doc.seq || 0;
    return true;
  }

  function setSaveStatus(s, text) { $("save-status").dataset.state = s; $("save-status").textContent = text; }

  // ------------------------------------------------------------------ conflicts and the team header
  function describe(d) {
    if (!d || d.decision === "undecided") return "undecided";
    return d.decision + (d.note ? " “" + d.note + "”" : "");
  }

  function renderConflicts() {
    const list = $("conflict-list");
    list.replaceChildren(...[...state.conflicts].map(([k, c]) => {
      const li = el("li");
      li.dataset.key = k;
      const who = c.theirs.reviewer ? c.theirs.reviewer : "someone";
      li.append(el("code", "", k), el("span", "", " you: " + describe(c.mine) + " · " + who + ": " + describe(c.theirs) +
        (c.theirs.time ? " (" + c.theirs.time.slice(11, 16) + " UTC)" : "") + " "));
      const keep = el("button", "keep-mine", "Keep mine"), take = el("button", "take-theirs", "Take theirs");
      keep.type = take.type = "button";
      keep.onclick = () => settle(k, true);
      take.onclick = () => settle(k, false);
      li.append(keep, take);
      return li;
    }));
    $("conflicts").hidden = state.conflicts.size === 0;
    for (const c of $("grid").children) paintCard(c);
    if (state.conflicts.size) setSaveStatus("error", state.conflicts.size + " conflict(s) to settle");
  }

  function settle(key, keepMine) {
    const c = state.conflicts.get(key);
    if (!c) return;
    state.conflicts.delete(key);
    state.revs.set(key, c.theirs.rev);
    if (keepMine) {
      state.pending.set(key, { decision: c.mine.decision, note: c.mine.note, base: c.theirs.rev });
      flush();
    } else {
      const chosen = c.theirs.decision === "accept" || c.theirs.decision === "reject";
      setLocal(key, chosen ? { decision: c.theirs.decision, note: c.theirs.note, reviewer: c.theirs.reviewer } : undefined);
    }
    renderConflicts();
    updateCurrent();
    if (!state.conflicts.size && !state.pending.size && !state.save.inFlight) setSaveStatus("saved", "saved to disk");
  }

  function renderTeam(st) {
    const people = st.reviewers.filter((r) => r.decided || r.changes)
      .map((r) => r.name + " " + r.decided + (r.rate_per_hour ? " (" + Math.round(r.rate_per_hour) + "/h)" : ""));
    const eta = st.eta_hours === null ? "" : " · ~" + st.eta_hours.toFixed(1) + " h to go";
    $("team").textContent = people.join(" · ") + (people.length ? " · " : "") + st.left + " left" + eta;
    $("team").hidden = false;
    window.SURD_TEAM = st;
  }

  // ------------------------------------------------------------------ export / load decision files
  function toDocument() {
    const decisions = {};
    for (const [k, d] of [...state.decisions.entries()].sort()) {
      decisions[k] = { decision: d.decision, note: d.note };
      if (d.reviewer || state.reviewer) decisions[k].reviewer = d.reviewer || state.reviewer;
    }
    return { format: FORMAT, version: 1, reviewer: state.reviewer, decisions };
  }

  function loadDocument(doc, source) {
    // merged per key, like the server: a file never removes a decision it does not mention
    if (!doc || doc.format !== FORMAT || typeof doc.decisions !== "object") {
      throw new Error(source + " is not a surd decisions file");
    }
    if (needName()) return;
    const known = new Set(IDX.keys);
    for (const [k, d] of Object.entries(doc.decisions)) {
      if (!known.has(k) || (d.decision !== "accept" && d.decision !== "reject")) continue;
      setDecision(k, { decision: d.decision, note: d.note || "" });
    }
  }

  function exportDecisions() { SurdKit.downloadJSON(toDocument(), "decisions-" + IDX.site_id + ".json"); }

  function setReviewer(name) {
    state.reviewer = name.trim().slice(0, 64);
    $("reviewer").value = state.reviewer;
    try { localStorage.setItem(nameKey, state.reviewer); } catch (err) { /* private mode: asked again next time */ }
    if (state.reviewer && state.pending.size) flush();
    else if (state.reviewer && $("save-status").dataset.state === "error" && !state.conflicts.size) setSaveStatus("idle", "");
  }

  // ------------------------------------------------------------------ keyboard and controls
  function bindKeys() {
    $("reviewer").addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); setReviewer(e.target.value); e.target.blur(); }
    });
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
    $("reviewer").addEventListener("change", (e) => setReviewer(e.target.value));
    $("keep-all").onclick = () => [...state.conflicts.keys()].forEach((k) => settle(k, true));
    $("take-all").onclick = () => [...state.conflicts.keys()].forEach((k) => settle(k, false));
    document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
    $("export").onclick = exportDecisions;
    $("f-apply").onclick = () => applyFilter();
    for (const id of ["f-status", "f-page-size"]) $(id).onchange = () => applyFilter(IDX.keys[currentIdx()]);
    $("prev-page").onclick = () => goTo((pageOf(state.pos) - 1) * state.pageSize);
    $("next-page").onclick = () => goTo((pageOf(state.pos) + 1) * state.pageSize);
    $("load").onchange = async (e) => {
      const file = e.target.files[0];
      if (!file) return;
      try { loadDocument(JSON.parse(await file.text()), file.name); applyFilter(); }
      catch (err) { alert(String(err)); }
    };
  }

  async function main() {
    if (!IDX) { document.body.textContent = "data/index.js is missing: re-export with `surd review export`."; return; }
    document.title = "surd review · " + IDX.title;
    $("title").textContent = "surd review · " + IDX.title;
    if (!IDX.scores) $("score-filter").hidden = true;
    if (IDX.role === "adjudication") document.body.classList.add("adjudication");
    wire();
    try { state.reviewer = localStorage.getItem(nameKey) || ""; } catch (err) { state.reviewer = ""; }
    $("reviewer").value = state.reviewer;
    state.served = await detectServer();
    if (!state.served) loadLocal();
    $("mode").textContent = state.served ? "· saving to the review server" : "· file mode: decisions stay in this browser, use Export";
    setSaveStatus(state.served ? "saved" : "idle", state.served ? "saved to disk" : "");
    if (state.served && !state.reviewer) needName();
    applyFilter();
    if (state.served) poll();
  }

  main();
})();
