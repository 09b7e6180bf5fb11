// Shared machinery of surd's static pages (the review page, the eval preference study): safe element building,
// the served-or-file:// persistence (changes sent to the page's server with retries, or kept in browser storage for
// an Export button), and single-key keyboard dispatch. Plain JS, no build step.
"use strict";

window.SurdKit = (function () {
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text; // never innerHTML: prompts and notes are untrusted text
    return e;
  }

  function downloadJSON(obj, filename) {
    const blob = new Blob([JSON.stringify(obj, null, 1)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  // The server's document at apiPath when surd's server serves the page and the document is in this format, else
  // null (file://, a plain web server, or another kind of site).
  async function fetchServerDocument(apiPath, format) {
    if (!location.protocol.startsWith("http")) return null;
    try {
      const res = await fetch(apiPath, { cache: "no-store" });
      if (!res.ok) return null;
      const doc = await res.json();
      return doc && doc.format === format ? doc : null;
    } catch (err) {
      return null;
    }
  }

  // File mode: the page's document in browser storage (what: "decisions", "answers" for the error text).
  function storeLocal(key, value, onStatus, what) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
      onStatus("saved", "saved in this browser");
    } catch (err) {
      onStatus("error", "browser storage failed: export your " + what + " now");
    }
  }

  function loadLocal(key) {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  }

  // Served mode: sends the page's queued changes to apiPath, debounced, one request at a time, retried with a growing
  // pause (or a 429's Retry-After) while the server is unreachable or refuses them. The page owns its queue:
  //   save          {inFlight, timer, error, backoff}, exposed on the page's state for tests
  //   onStatus(s, text); served(): whether a server is there
  //   blocked()     why nothing may be sent now (e.g. no name yet), or ""
  //   pending()     whether anything waits; take(): the next request's body (taken out of the queue)
  //   answer(res, data)  the server's reply to it: true = taken (a 2xx, or a refusal the page settles itself),
  //                 false = refused (the page's lost() puts what take() took back)
  //   lost()        put the taken changes back; done(): after every request
  //   settled()     [state, text] for the status once the queue is empty; unsaved(): whether leaving loses work
  // Returns {queued: call after queueing a change, flush: send now}.
  function createSender(opts) {
    const save = opts.save;

    function schedule(ms) {
      clearTimeout(save.timer);
      save.timer = setTimeout(flush, ms);
    }

    async function flush() {
      clearTimeout(save.timer);
      if (save.inFlight || !opts.pending()) return;
      const blocked = opts.blocked();
      if (blocked) { opts.onStatus("error", "not saved: " + blocked); return; }
      const body = opts.take();
      save.inFlight = true;
      let retryMs = 0;
      try {
        const res = await fetch(opts.apiPath, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        const data = await res.json().catch(() => ({}));
        if (opts.answer(res, data)) {
          save.error = null;
          if (res.ok) save.backoff = 0;
        } else {
          opts.lost();
          save.error = res.status === 401 ? "not authorised: open the link with ?token= that the server printed"
            : (data.error || res.statusText || String(res.status));
          if (res.status === 429) retryMs = 1000 * Number(res.headers.get("Retry-After") || 1);
        }
      } catch (err) {
        opts.lost();
        save.error = "server unreachable (" + err.message + "); retrying";
      } finally {
        if (opts.done) opts.done();
        save.inFlight = false;
      }
      if (save.error) {
        save.backoff = Math.min(30000, Math.max(1000, save.backoff * 2));
        opts.onStatus("error", "not saved: " + save.error);
        schedule(Math.max(retryMs, save.backoff));
      } else if (opts.pending()) {
        flush();
      } else {
        opts.onStatus(...opts.settled());
      }
    }

    function queued() {
      opts.onStatus("saving", "saving…");
      schedule(150);
    }

    window.addEventListener("beforeunload", (e) => {
      if (opts.served() && (save.inFlight || opts.unsaved())) { flush(); e.preventDefault(); }
    });
    return { queued, flush };
  }

  // One handler for single-key shortcuts: actions maps a lower-cased key name to a function; keys typed into
  // inputs and textareas (pages give those their own handlers), and Alt/Ctrl/Meta chords (except those listed in
  // chords, e.g. "ctrl+z", which Meta also triggers) are left alone.
  function bindKeys(actions, chords) {
    document.addEventListener("keydown", (e) => {
      const t = e.target;
      if (t instanceof HTMLTextAreaElement || t instanceof HTMLInputElement || e.altKey) return;
      const k = e.key.toLowerCase();
      if (e.ctrlKey || e.metaKey) {
        const chord = chords && chords["ctrl+" + k];
        if (chord) { e.preventDefault(); chord(); }
        return;
      }
      if (actions[k]) { e.preventDefault(); actions[k](); }
    });
  }

  return { el, downloadJSON, fetchServerDocument, storeLocal, loadLocal, createSender, bindKeys };
})();
