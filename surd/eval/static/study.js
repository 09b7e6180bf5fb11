// surd preference study page: blind A/B pairs, keyboard driven; answers are saved to SITE/answers/<rater>.json by
// `surd eval study serve` as they are given. The page never knows which model made which image: the export
// randomised sides and kept the key elsewhere. The page machinery (file:// or served, storage, keys, Export) is
// rating.js.
"use strict";

SurdRating.start({
  data: window.SURD_STUDY, stateName: "SURD_STUDY_STATE", format: "surd-eval-study-answers", storage: "surd-study",
  list: "pairs", field: "choice", values: ["left", "right", "skip"], timed: true, itemAttr: "pair",
  keys: { arrowleft: "left", 1: "left", arrowright: "right", 2: "right", s: "skip" },
  buttons: { "pick-left": "left", "pick-right": "right", skip: "skip" },
  chosen: { left: "left", right: "right" }, // the image chosen is marked
  render: (p, $) => {
    $("img-left").src = p.left;
    $("img-right").src = p.right;
  },
  missing: "data/study.js is missing: re-export with `surd eval study export`.",
  title: "surd study", heading: "surd preference study", server: "study server",
});
