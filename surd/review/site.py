"""A review site on disk: ``site.json`` (its keys, role and origin), and the batches of a split export."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SITE_FORMAT = "surd-review-site"


def read_site(review_dir: str | os.PathLike) -> dict[str, Any]:
    """The site.json of a review batch; a clear error when pointed at a split export's root or elsewhere."""
    root = Path(review_dir)
    site = root / "site.json"
    if not site.exists():
        batches = batch_dirs(root)
        hint = f"; it holds batches, use one of them: {batches[0]}" if batches else \
            "; create one with `surd review export DIR --out REVIEW_DIR`"
        raise FileNotFoundError(f"{root} is not a review site (no site.json){hint}")
    return json.loads(site.read_text(encoding="utf-8"))


def batch_dirs(root: str | os.PathLike) -> list[Path]:
    """The batch_XX sites of a split export (empty for a single site)."""
    return sorted(p for p in Path(root).glob("batch_*") if (p / "site.json").exists())


def site_dirs(review_dir: str | os.PathLike) -> list[Path]:
    """The review sites under *review_dir*: itself, or its batches when it is a split export's root."""
    root = Path(review_dir)
    if (root / "site.json").exists():
        return [root]
    dirs = batch_dirs(root)
    if not dirs:
        read_site(root)  # raises the explanatory error
    return dirs
