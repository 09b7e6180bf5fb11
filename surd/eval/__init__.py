"""`surd eval`: the paper's evaluation (§5.1) as one command.

- `config.EvalConfig` + `run.run_eval(cfg)`: baseline and adapter images with identical seeds (`generate`), every
  image scored once (`score`: CLIP, BLIP VQA, BRISQUE, MUSIQ, CLIP-IQA via `quality`), then `results.json`,
  `results.csv` and `report.html` (`results`, `report`); all of it resumable.
- `prompts`: the bundled ``paper`` prompt set (``prompt_sets/paper.yaml``) or a user's file; `answers`: the VQA answer
  normaliser; `stats`: paired-softmax CLIP score, Welch's t-test, binomial test.
- `study`: the blind A/B preference study page and its answers; `compare`: two evaluations side by side.
"""
