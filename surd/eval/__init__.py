"""`surd eval`: the paper's evaluation (§5.1) as one command.

- `config.EvalConfig` + `run.run_eval(cfg)`: baseline and adapter images with identical seeds, each generated alone so
  its bytes never depend on the batch (`generate`), every image scored once (`score`: CLIP, BLIP VQA, the detector
  judge of `detect`, BRISQUE, MUSIQ, CLIP-IQA via `quality`), then `results.json`, `results.csv` and `report.html`
  (`results`, `report`), with the paper's own figures beside the run's (`paper`); all of it resumable.
- `prompts`: the bundled ``paper`` and ``paper-table1`` prompt sets (``prompt_sets/``) or a user's file; `answers`:
  the VQA answer normaliser; `stats`: paired-softmax CLIP score, the paper's equal-variance t-test and Welch's,
  binomial test.
- `study`: the blind A/B preference study page and its answers; `judge`: people as the reference judge of semantic
  accuracy; `compare`: two evaluations side by side.
"""
