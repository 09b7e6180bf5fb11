"""The row every source yields and ingest reads: prompts, image reference, provenance, and a listing-time error."""

from __future__ import annotations

from typing import Any

from surd.trust import check_ref


def make_row(*, source: str, source_id: str, image: str, complex_prompt: str | None, negative_prompt: str | None = "",
             simple_prompt: str | None = None, url: str = "", license: str = "", provenance: Any = None,
             nsfw: Any = None, extra: dict[str, Any] | None = None, error: str | None = None,
             error_detail: str = "") -> dict[str, Any]:
    """One ingest row. ``error`` (a reject reason) marks a row already rejected at listing time."""
    return {
        "source": str(source), "source_id": str(source_id), "image": image,
        "complex_prompt": complex_prompt, "negative_prompt": negative_prompt or "", "simple_prompt": simple_prompt,
        "url": url or "", "license": license or "", "provenance": provenance, "nsfw": nsfw,
        "extra": extra or {}, "error": error, "error_detail": error_detail,
    }


def web_row(**fields: Any) -> dict[str, Any]:
    """`make_row` for an image URL that a web site's answer names (Civitai, Lexica, Stable Diffusion Online): only
    http(s) is fetched, so an answer naming ``file:///…`` or ``s3://…`` cannot pull a local file or a private object
    into the dataset; such a row is rejected with the reason `surd.trust.check_ref` gives."""
    row = make_row(**fields)
    refused = check_ref(row["image"]) if row["image"] and row["error"] is None else None
    if refused is not None:
        row["error"], row["error_detail"] = refused.reason, refused.detail
    return row
