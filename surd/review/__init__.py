"""Manual review (the paper's step 5), alone or as a team: export, serve, follow progress, import.

- `export.export_review(dataset_dir, out_dir, ExportConfig(...))` writes the site / tasks / CSV, optionally split
  into batches that share a fraction of samples (``overlap``) so reviewers' agreement can be measured,
- `server.serve(review_dir, ServeConfig(...))` serves a site to several reviewers at once: every change is merged per
  key, checked against the revision its writer saw, and appended + fsynced to the journal ``decisions.jsonl``
  (`journal`) before the reply; ``decisions.json`` is a snapshot rebuilt from it; `access` guards who may use it,
- `progress.site_status(review_dir)` gives per-reviewer counts, rates and what is left,
- `importer.plan_import(dataset_dir, files, conflict=...)` validates and merges decision files, measures agreement
  (`agreement`: percent and Cohen's kappa) and settles disagreements by rule or through an adjudication site.

Decision file format (``decisions.json``, and what the page's Export button downloads)::

    {"format": "surd-review-decisions", "version": 1,
     "decisions": {"<sample key>": {"decision": "accept" | "reject", "note": "free text, may be empty",
                                    "reviewer": "optional name"}}}

Keys not listed are undecided. Journals, Label Studio exports (JSON or JSON-MIN) and filled-in review CSVs are read too.
"""

from surd.review.decisions import load_decisions
from surd.review.records import FORMAT, VERSION, Decision, DecisionError

__all__ = ["FORMAT", "VERSION", "Decision", "DecisionError", "load_decisions"]
