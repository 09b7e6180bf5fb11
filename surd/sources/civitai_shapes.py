"""The shapes Civitai's ``/api/v1/images`` really answers with, read into one view (see fixtures' PROVENANCE.md).

From the server code (``src/server/services/image-search.service.ts``, ``browsingLevel.constants.ts``,
``client-utils/edge-url.ts``):

- ``meta`` is null without ``withMeta``; with it, the generation data either flat (``{prompt, …}``, the feed-search
  path) or wrapped as ``{id, meta}`` (the legacy DB path: ``modelId`` without ``modelVersionId``, ``imageId``, or
  ``flatMeta=false``), where the inner ``meta`` may itself be null.
- ``nsfwLevel`` is a string (``None``/``Soft``/``Mature``/``X``/``Blocked``), ``browsingLevel`` the integer flag
  (1 PG, 2 PG-13, 4 R, 8 X, 16 XXX, 32 Blocked); older answers had no ``browsingLevel``, and an integer
  ``nsfwLevel`` (as ``/api/v1/models`` images carry) is read as the flag.
- ``type`` is ``image``, ``video`` or ``audio``; a video's ``url`` ends in ``.mp4``. Older answers have no ``type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BLOCKED = 32
LEVEL_NAMES = {1: "None", 2: "Soft", 4: "Mature", 8: "X", 16: "X", BLOCKED: "Blocked"}  # the server's reverse map
VIDEO_SUFFIXES = (".mp4", ".webm")  # the server infers video from these (and .gif, which Pillow reads as an image)


@dataclass(frozen=True)
class ItemView:
    """One API item, normalised: generation data, nsfw info, and the reason it is unusable (None when usable)."""

    meta: dict[str, Any]
    prompt: str | None
    nsfw: dict[str, Any]
    media_type: str
    error: str | None = None
    detail: str = ""


def unwrap_meta(raw: Any) -> tuple[dict[str, Any] | None, str]:
    """(generation data or None, how it came): flat, nested ``{id, meta}``, null, or not an object."""
    if raw is None:
        return None, "meta is null (withMeta off, or no generation data shared)"
    if not isinstance(raw, dict):
        return None, f"meta is a {type(raw).__name__}, not an object"
    if "meta" in raw and set(raw) <= {"id", "meta"}:
        inner = raw["meta"]
        if inner is None:
            return None, "nested meta {id, meta: null}: no generation data shared"
        if not isinstance(inner, dict):
            return None, f"nested meta.meta is a {type(inner).__name__}, not an object"
        return inner, "nested"
    return raw, "flat"


def nsfw_info(item: dict[str, Any]) -> dict[str, Any]:
    """``{"nsfw": bool|None, "level": str|None, "browsing_level": int|None}`` from whichever fields the item has."""
    level, flag, nsfw = item.get("nsfwLevel"), item.get("browsingLevel"), item.get("nsfw")
    if isinstance(level, int) and not isinstance(level, bool):  # an integer nsfwLevel is the flag itself
        flag = flag if isinstance(flag, int) else level
        level = LEVEL_NAMES.get(level)
    if isinstance(nsfw, str):  # some older answers carried the level name in `nsfw`
        level = level or nsfw
        nsfw = nsfw not in ("None", "false", "")
    if nsfw is None and isinstance(level, str):
        nsfw = level != "None"
    if not isinstance(flag, int) or isinstance(flag, bool):
        flag = None
    return {"nsfw": nsfw if isinstance(nsfw, bool) else None, "level": level, "browsing_level": flag}


def media_type(item: dict[str, Any]) -> str:
    """``image``, ``video``, ``audio`` (or whatever new type the server names); inferred from the URL when absent."""
    kind = item.get("type")
    if isinstance(kind, str) and kind:
        return kind.lower()
    url = str(item.get("url") or "").split("?", 1)[0].lower()
    return "video" if url.endswith(VIDEO_SUFFIXES) else "image"


def read_item(item: dict[str, Any]) -> ItemView:
    """The item's view; ``error`` names the first reason it cannot become a sample."""
    meta, how = unwrap_meta(item.get("meta"))
    prompt = meta.get("prompt") if meta else None
    prompt = prompt if isinstance(prompt, str) and prompt.strip() else None
    nsfw, kind = nsfw_info(item), media_type(item)
    error, detail = None, ""
    if item.get("id") is None:
        error, detail = "missing_id", "the Civitai item has no id"
    elif not item.get("url") or not isinstance(item["url"], str):
        error, detail = "missing_image_ref", "the Civitai item has no url"
    elif kind != "image":
        known = kind in ("video", "audio")
        error = f"{kind}_item" if known else "unsupported_media_type"
        detail = f"Civitai item of type {kind!r} ({item.get('url')}): only still images become samples"
    elif nsfw["level"] == "Blocked" or (nsfw["browsing_level"] or 0) & BLOCKED:
        error, detail = "civitai_blocked", "Civitai marks this image Blocked (moderation)"
    elif meta is None:
        error, detail = ("bad_meta" if "not an object" in how else "missing_prompt"), how
    elif prompt is None:
        raw = meta.get("prompt") if meta else None
        why = "no meta.prompt" if raw is None else f"meta.prompt is {raw!r}"
        error, detail = "missing_prompt", f"{why} ({how} meta; generation data not shared)"
    return ItemView(meta=meta or {}, prompt=prompt, nsfw=nsfw, media_type=kind, error=error, detail=detail)
