// surd judging page: people judge, image by image, whether it shows what its prompt asks (yes / no / can't tell),
// keyboard driven; each answer is journaled by `surd eval judge serve` as it is given. The page never knows which
// model made an image. The page machinery (file:// or served, storage, keys, Export) is rating.js.
"use strict";

SurdRating.start({
  data: window.SURD_JUDGE, stateName: "SURD_JUDGE_STATE", format: "surd-eval-judge-answers", storage: "surd-judge",
  list: "items", field: "answer", values: ["yes", "no", "skip"], timed: false, itemAttr: "item",
  keys: { y: "yes", 1: "yes", n: "no", 2: "no", s: "skip" },
  buttons: { yes: "yes", no: "no", skip: "skip" },
  chosen: { yes: "yes", no: "no", skip: "skip" }, // the button of the answer given is marked
  render: (p, $) => {
    $("img").src = p.image;
    $("checks").replaceChildren(...p.checks.map((c) => SurdKit.el("li", "", c)));
  },
  missing: "data/judge.js is missing: re-export with `surd eval judge export`.",
  title: "surd judging", heading: "surd judging page", server: "judging server",
});
