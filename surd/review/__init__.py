"""Manual review (the paper's step 5): export a dataset to a review site, Label Studio or CSV; import decisions.

- `export.export_review(dataset_dir, out_dir, ExportConfig(...))` writes the site / tasks / CSV,
- `server.serve(review_dir)` serves a site and saves decisions to ``decisions.json`` as they are made,
- `importer.import_review(dataset_dir, files, out)` validates every decision file, then runs the ``review`` stage.

Decision file format (``decisions.json``, and what the page's Export button downloads)::

    {"format": "surd-review-decisions", "version": 1,
     "decisions": {"<sample key>": {"decision": "accept" | "reject", "note": "free text, may be empty"}}}

Keys not listed are undecided. Label Studio exports (JSON or JSON-MIN) and filled-in review CSVs are read too.
"""

from surd.review.decisions import FORMAT, VERSION, Decision, DecisionError, load_decisions

__all__ = ["FORMAT", "VERSION", "Decision", "DecisionError", "load_decisions"]
