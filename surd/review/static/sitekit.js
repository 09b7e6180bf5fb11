// Shared machinery of surd's static pages (the review page, the eval study page): safe element building, the
// served-or-file:// persistence (debounced POSTs to the page's server, or browser storage + a JSON download), and
// single-key keyboard dispatch. Plain JS, no build step.
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

  // The server's document at apiPath when the page is served by surd, else null (file:// or a plain web server).
  async function fetchServerDocument(apiPath) {
    if (!location.protocol.startsWith("http")) return null;
    try {
      const res = await fetch(apiPath, { cache: "no-store" });
      return res.ok ? await res.json() : null;
    } catch (err) {
      return null;
    }
  }

  // Saves the page's document as it changes. Served: a debounced POST of the whole document to apiPath, retried
  // after an error. File mode: browser storage under storageKey (the page offers an Export button).
  // save: an object the page exposes for tests ({dirty, inFlight, timer, error}); onStatus(state, text).
  function createSaver(opts) {
    const save = opts.save;
    function setStatus(s, text) { if (opts.onStatus) opts.onStatus(s, text); }

    async function flush() {
      if (save.inFlight || !save.dirty) return;
      save.inFlight = true;
      save.dirty = false;
      try {
        const res = await fetch(opts.apiPath, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(opts.toDocument()),
        });
        if (!res.ok) throw new Error((await res.json()).error || res.statusText);
        save.error = null;
      } catch (err) {
        save.error = String(err);
        save.dirty = true;
      } finally {
        save.inFlight = false;
      }
      if (save.error) setStatus("error", "not saved: " + save.error);
      else if (save.dirty) flush();
      else setStatus("saved", "saved to disk");
    }

    function persist() {
      if (!opts.served()) {
        try {
          localStorage.setItem(opts.storageKey(), JSON.stringify(opts.toStorage()));
          setStatus("saved", "saved in this browser");
        } catch (err) {
          setStatus("error", "browser storage failed: export your answers now");
        }
        return;
      }
      save.dirty = true;
      setStatus("saving", "saving…");
      clearTimeout(save.timer);
      save.timer = setTimeout(flush, 150);
    }

    function loadStored() {
      const raw = localStorage.getItem(opts.storageKey());
      return raw ? JSON.parse(raw) : null;
    }

    window.addEventListener("beforeunload", (e) => {
      if (opts.served() && (save.dirty || save.inFlight)) { flush(); e.preventDefault(); }
    });
    return { persist, flush, loadStored };
  }

  // One handler for single-key shortcuts: actions maps a lower-cased key name to a function; keys typed into
  // inputs and textareas, and Alt/Ctrl/Meta chords (except those listed in chords, e.g. "ctrl+z"), are left alone.
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

  return { el, downloadJSON, fetchServerDocument, createSaver, bindKeys };
})();
