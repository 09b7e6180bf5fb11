"""Optional heavy dependencies (torch, transformers, open_clip, ray, ...): imported on use, with the install hint."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import a heavy optional dependency, or fail with the exact install command."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is needed for this stage: pip install 'surd[{extra}]'") from e
