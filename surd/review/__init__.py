"""Manual review (the paper's step 5): export a dataset to a review site, Label Studio or CSV; import decisions.

- `export.export_review(dataset_dir, out_dir, ExportConfig(...))` writes the site / tasks / CSV,
- `server.serve(review_dir)` serves a site and saves decisions to ``decisions.json`` as they are made,
- `importer.review_config(dataset_dir, files)` validates every decision file and returns the ``review`` stage's config.

Decision file format (``decisions.json``, and what the page's Export button downloads)::

    {"format": "surd-review-decisions", "version": 1,
     "decisions": {"<sample key>": {"decision": "accept" | "reject", "note": "free text, may be empty"}}}

Keys not listed are undecided. Label Studio exports (JSON or JSON-MIN) and filled-in review CSVs are read too.
"""

from surd.review.decisions import load_decisions
from surd.review.records import FORMAT, VERSION, Decision, DecisionError

__all__ = ["FORMAT", "VERSION", "Decision", "DecisionError", "load_decisions"]
