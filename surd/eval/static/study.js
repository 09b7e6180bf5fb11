// surd preference study page: blind A/B pairs, keyboard driven. Works from file:// (answers in browser storage +
// Export button) and from `surd eval study serve` (answers saved to SITE/answers/<rater>.json as they are given).
// The page never knows which model made which image: the export randomised sides and kept the key elsewhere.
// Sending, storage, keys and downloads are the review page's (surd/review/static/sitekit.js).
"use strict";

(function () {
  const S = window.SURD_STUDY;
  const FORMAT = "surd-eval-study-answers";
  const SERVER_FORMAT = FORMAT + "-set"; // the study server's document: every rater's answers
  const $ = (id) => document.getElementById(id);
  const state = {
    served: false, rater: "", pos: 0, answers: new Map(), // pair id -> {choice, ms}
    shownAt: 0, save: { dirty: false, inFlight: false, timer: null, error: null, backoff: 0 }, serverDoc: null,
  };
  window.SURD_STUDY_STATE = state; // for tests and the console

  function toDocument() {
    const answers = {};
    for (const [k, a] of [...state.answers.entries()].sort()) answers[k] = { choice: a.choice, ms: a.ms };
    return { format: FORMAT, version: 1, site_id: S.site_id, rater: state.rater, answers };
  }

  function setSaveStatus(s, text) { $("save-status").dataset.state = s; $("save-status").textContent = text; }

  function storageKey() { return "surd-study:" + S.site_id + ":" + state.rater; }

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
    if (!doc || doc.format !== FORMAT || doc.site_id !== S.site_id) return;
    const known = new Set(S.pairs.map((p) => p.id));
    for (const [k, a] of Object.entries(doc.answers || {})) {
      if (known.has(k) && ["left", "right", "skip"].includes(a.choice)) state.answers.set(k, a);
    }
  }

  function firstUnanswered() {
    const i = S.pairs.findIndex((p) => !state.answers.has(p.id));
    return i < 0 ? S.pairs.length : i;
  }

  function show() {
    const done = state.pos >= S.pairs.length;
    $("pair").hidden = done;
    $("done").hidden = !done;
    $("progress-text").textContent = state.answers.size + " / " + S.pairs.length + " answered";
    $("bar-done").style.width = (100 * state.answers.size / Math.max(1, S.pairs.length)) + "%";
    if (done) { document.body.dataset.done = "1"; return; }
    delete document.body.dataset.done;
    const p = S.pairs[state.pos], a = state.answers.get(p.id);
    $("prompt").textContent = "“" + p.prompt + "”  (" + (state.pos + 1) + " of " + S.pairs.length + ")";
    $("img-left").src = p.left;
    $("img-right").src = p.right;
    $("left").classList.toggle("chosen", !!a && a.choice === "left");
    $("right").classList.toggle("chosen", !!a && a.choice === "right");
    document.body.dataset.pair = p.id;
    state.shownAt = performance.now();
  }

  function answer(choice) {
    if (!state.rater || state.pos >= S.pairs.length) return;
    const p = S.pairs[state.pos];
    state.answers.set(p.id, { choice, ms: Math.round(performance.now() - state.shownAt) });
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
    SurdKit.bindKeys({
      arrowleft: () => answer("left"), 1: () => answer("left"),
      arrowright: () => answer("right"), 2: () => answer("right"),
      s: () => answer("skip"), u: back, backspace: back,
    });
    $("rater").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); begin(); } });
    $("begin").onclick = begin;
    $("pick-left").onclick = () => answer("left");
    $("pick-right").onclick = () => answer("right");
    $("skip").onclick = () => answer("skip");
    $("back").onclick = back;
    $("export").onclick = () => SurdKit.downloadJSON(toDocument(), "answers-" + S.site_id + "-" + state.rater + ".json");
  }

  async function main() {
    if (!S) { document.body.textContent = "data/study.js is missing: re-export with `surd eval study export`."; return; }
    document.title = "surd study · " + S.title;
    $("title").textContent = "surd preference study · " + S.title;
    wire();
    state.serverDoc = await SurdKit.fetchServerDocument("api/decisions", SERVER_FORMAT);
    state.served = state.serverDoc !== null;
    const mode = state.served ? "· answers are saved to the study server"
      : "· file mode: answers stay in this browser, use Export answers when done";
    $("mode").textContent = mode;
    $("done-mode").textContent = state.served ? "Your answers are saved." : "Click Export answers and send the file.";
    document.body.dataset.ready = "1";
    $("rater").focus();
  }

  main();
})();
