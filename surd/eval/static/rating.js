// The rating pages' controller (the judging page, the preference study): named raters answer one item at a time,
// keyboard driven. Works from file:// (answers in browser storage + Export button) and from `surd eval <page> serve`
// (the rater's answer document goes to the page's server as answers are given). A page's own script (judge.js,
// study.js) calls SurdRating.start with what differs: its data, answer field and values, keys, buttons, and how an
// item is shown. Sending, storage, keys and downloads are the review page's (surd/review/static/sitekit.js).
"use strict";

window.SurdRating = (function () {
  const $ = (id) => document.getElementById(id);

  // page: {data, stateName, format, storage, list, field, values, timed, itemAttr, keys, buttons, chosen, render,
  //        missing, title, heading, server} (see judge.js and study.js)
  function start(page) {
    const S = page.data;
    const SERVER_FORMAT = page.format + "-set"; // the page server's document: every rater's answers
    const state = {
      served: false, rater: "", pos: 0, answers: new Map(), // item id -> the answer record (see record)
      shownAt: 0, save: { dirty: false, inFlight: false, timer: null, error: null, backoff: 0 }, serverDoc: null,
    };
    window[page.stateName] = state; // for tests and the console
    const items = () => S[page.list];

    // What is kept of an answer: its value (and, on a timed page, the milliseconds the rater took).
    function record(a) {
      return page.timed ? { [page.field]: a[page.field], ms: a.ms } : { [page.field]: a[page.field] };
    }

    function toDocument() {
      const answers = {};
      for (const [k, a] of [...state.answers.entries()].sort()) answers[k] = record(a);
      return { format: page.format, version: 1, site_id: S.site_id, rater: state.rater, answers };
    }

    function setSaveStatus(s, text) { $("save-status").dataset.state = s; $("save-status").textContent = text; }

    function storageKey() { return page.storage + ":" + S.site_id + ":" + state.rater; }

    // Served: the rater's whole answer document goes to the server after each answer (the latest one wins).
    const sender = SurdKit.createSender({
      apiPath: "api/decisions", save: state.save, onStatus: setSaveStatus, served: () => state.served,
      blocked: () => (state.rater ? "" : "enter your name first"),
      pending: () => state.save.dirty,
      take: () => { state.save.dirty = false; return toDocument(); },
      answer: (res) => res.ok,
      lost: () => { state.save.dirty = true; },
      settled: () => ["saved", "saved to disk"],
      unsaved: () => state.save.dirty,
    });

    function persist() {
      if (!state.served) { SurdKit.storeLocal(storageKey(), toDocument(), setSaveStatus, "answers"); return; }
      state.save.dirty = true;
      sender.queued();
    }

    function loadAnswers(doc) {
      state.answers.clear();
      if (!doc || doc.format !== page.format || doc.site_id !== S.site_id) return;
      const known = new Set(items().map((p) => p.id));
      for (const [k, a] of Object.entries(doc.answers || {})) {
        if (known.has(k) && page.values.includes(a[page.field])) state.answers.set(k, record(a));
      }
    }

    function firstUnanswered() {
      const i = items().findIndex((p) => !state.answers.has(p.id));
      return i < 0 ? items().length : i;
    }

    function show() {
      const n = items().length, done = state.pos >= n;
      $("pair").hidden = done;
      $("done").hidden = !done;
      $("progress-text").textContent = state.answers.size + " / " + n + " answered";
      $("bar-done").style.width = (100 * state.answers.size / Math.max(1, n)) + "%";
      if (done) { document.body.dataset.done = "1"; return; }
      delete document.body.dataset.done;
      const p = items()[state.pos], a = state.answers.get(p.id);
      $("prompt").textContent = "“" + p.prompt + "”  (" + (state.pos + 1) + " of " + n + ")";
      page.render(p, $);
      for (const [id, value] of Object.entries(page.chosen)) {
        $(id).classList.toggle("chosen", !!a && a[page.field] === value);
      }
      document.body.dataset[page.itemAttr] = p.id;
      state.shownAt = performance.now();
    }

    function answer(value) {
      if (!state.rater || state.pos >= items().length) return;
      const p = items()[state.pos];
      const a = { [page.field]: value, ms: Math.round(performance.now() - state.shownAt) };
      state.answers.set(p.id, record(a));
      persist();
      state.pos += 1;
      show();
    }

    function back() {
      if (!state.rater || state.pos === 0) return;
      state.pos -= 1;
      show();
    }

    async function begin() {
      const name = $("rater").value.trim();
      if (!/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/.test(name)) { alert("Enter a name: letters, digits, space, . _ -"); return; }
      state.rater = name;
      const raters = state.serverDoc ? state.serverDoc.raters || {} : null;
      loadAnswers(raters ? raters[name] : SurdKit.loadLocal(storageKey()));
      $("start").hidden = true;
      state.pos = firstUnanswered();
      show();
    }

    function wire() {
      const keys = { u: back, backspace: back };
      for (const [key, value] of Object.entries(page.keys)) keys[key] = () => answer(value);
      SurdKit.bindKeys(keys);
      $("rater").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); begin(); } });
      $("begin").onclick = begin;
      for (const [id, value] of Object.entries(page.buttons)) $(id).onclick = () => answer(value);
      $("back").onclick = back;
      $("export").onclick = () => SurdKit.downloadJSON(toDocument(), "answers-" + S.site_id + "-" + state.rater + ".json");
    }

    async function main() {
      if (!S) { document.body.textContent = page.missing; return; }
      document.title = page.title + " · " + S.title;
      $("title").textContent = page.heading + " · " + S.title;
      wire();
      state.serverDoc = await SurdKit.fetchServerDocument("api/decisions", SERVER_FORMAT);
      state.served = state.serverDoc !== null;
      const mode = state.served ? "· answers are saved to the " + page.server
        : "· file mode: answers stay in this browser, use Export answers when done";
      $("mode").textContent = mode;
      $("done-mode").textContent = state.served ? "Your answers are saved." : "Click Export answers and send the file.";
      document.body.dataset.ready = "1";
      $("rater").focus();
    }

    main();
  }

  return { start };
})();
