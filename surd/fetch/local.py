"""Fetcher for local files (plain paths and file:// URLs): missing, empty or unreadable files become reasons."""

from __future__ import annotations

import os
from typing import Any

from surd.fetch.result import FetchError
from surd.trust import local_path


def fetch_many(refs: list[str], options: dict[str, Any]) -> list[bytes | FetchError]:
    """Read local files; a missing or empty file is a FetchError, not an exception."""
    max_bytes = int(options.get("max_bytes", 64 * 1024 * 1024))
    out: list[bytes | FetchError] = []
    for ref in refs:
        path = local_path(ref)
        try:
            size = os.path.getsize(path)
            if size == 0:
                out.append(FetchError("empty_file", path))
            elif size > max_bytes:
                out.append(FetchError("too_large", f"{path}: {size} bytes > {max_bytes}"))
            else:
                with open(path, "rb") as f:
                    out.append(f.read())
        except FileNotFoundError:
            out.append(FetchError("missing_file", path))
        except IsADirectoryError:
            out.append(FetchError("not_a_file", path))
        except OSError as e:
            out.append(FetchError("read_error", f"{path}: {e}"))
    return out
