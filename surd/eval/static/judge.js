// surd judging page: people judge, image by image, whether it shows what its prompt asks (yes / no / can't tell),
// keyboard driven. Works from file:// (answers in browser storage + Export button) and from `surd eval judge serve`
// (each answer journaled by the server as it is given). The page never knows which model made an image.
// Sending, storage, keys and downloads are the review page's (surd/review/static/sitekit.js).
"use strict";

(function () {
  const S = window.SURD_JUDGE;
  const FORMAT = "surd-eval-judge-answers";
  const SERVER_FORMAT = FORMAT + "-set"; // the judge server's document: every rater's answers
  const $ = (id) => document.getElementById(id);
  const state = {
    served: false, rater: "", pos: 0, answers: new Map(), // item id -> {answer}
    save: { dirty: false, inFlight: false, timer: null, error: null, backoff: 0 }, serverDoc: null,
  };
  window.SURD_JUDGE_STATE = state; // for tests and the console

  function toDocument() {
    const answers = {};
    for (const [k, a] of [...state.answers.entries()].sort()) answers[k] = { answer: a.answer };
    return { format: FORMAT, version: 1, site_id: S.site_id, rater: state.rater, answers };
  }

  function setSaveStatus(s, text) { $("save-status").dataset.state = s; $("save-status").textContent = text; }

  function storageKey() { return "surd-judge:" + S.site_id + ":" + state.rater; }

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
    const known = new Set(S.items.map((p) => p.id));
    for (const [k, a] of Object.entries(doc.answers || {})) {
      if (known.has(k) && ["yes", "no", "skip"].includes(a.answer)) state.answers.set(k, { answer: a.answer });
    }
  }

  function firstUnanswered() {
    const i = S.items.findIndex((p) => !state.answers.has(p.id));
    return i < 0 ? S.items.length : i;
  }

  function show() {
    const done = state.pos >= S.items.length;
    $("pair").hidden = done;
    $("done").hidden = !done;
    $("progress-text").textContent = state.answers.size + " / " + S.items.length + " answered";
    $("bar-done").style.width = (100 * state.answers.size / Math.max(1, S.items.length)) + "%";
    if (done) { document.body.dataset.done = "1"; return; }
    delete document.body.dataset.done;
    const p = S.items[state.pos], a = state.answers.get(p.id);
    $("prompt").textContent = "“" + p.prompt + "”  (" + (state.pos + 1) + " of " + S.items.length + ")";
    $("img").src = p.image;
    const list = $("checks");
    list.replaceChildren(...p.checks.map((c) => SurdKit.el("li", "", c)));
    for (const k of ["yes", "no", "skip"]) $(k).classList.toggle("chosen", !!a && a.answer === k);
    document.body.dataset.item = p.id;
  }

  function answer(value) {
    if (!state.rater || state.pos >= S.items.length) return;
    const p = S.items[state.pos];
    state.answers.set(p.id, { answer: value });
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
      y: () => answer("yes"), 1: () => answer("yes"),
      n: () => answer("no"), 2: () => answer("no"),
      s: () => answer("skip"), u: back, backspace: back,
    });
    $("rater").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); begin(); } });
    $("begin").onclick = begin;
    $("yes").onclick = () => answer("yes");
    $("no").onclick = () => answer("no");
    $("skip").onclick = () => answer("skip");
    $("back").onclick = back;
    $("export").onclick = () => SurdKit.downloadJSON(toDocument(), "answers-" + S.site_id + "-" + state.rater + ".json");
  }

  async function main() {
    if (!S) { document.body.textContent = "data/judge.js is missing: re-export with `surd eval judge export`."; return; }
    document.title = "surd judging · " + S.title;
    $("title").textContent = "surd judging page · " + S.title;
    wire();
    state.serverDoc = await SurdKit.fetchServerDocument("api/decisions", SERVER_FORMAT);
    state.served = state.serverDoc !== null;
    const mode = state.served ? "· answers are saved to the judging server"
      : "· file mode: answers stay in this browser, use Export answers when done";
    $("mode").textContent = mode;
    $("done-mode").textContent = state.served ? "Your answers are saved." : "Click Export answers and send the file.";
    document.body.dataset.ready = "1";
    $("rater").focus();
  }

  main();
})();
