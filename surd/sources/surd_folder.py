"""The official SUR-adapter dataset layout: a folder of images + metadata.jsonl (file_name, text, prompt).

``text`` is the simple (BLIP) prompt and ``prompt`` the complex one, so a released SURD imports as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.sources import manifest

METADATA = "metadata.jsonl"


@dataclass(frozen=True)
class Config:
    path: str = ""
    source_name: str = "surd"

    def __post_init__(self) -> None:
        folder = Path(self.path)
        if not folder.is_dir():
            raise FileNotFoundError(f"SURD folder {self.path} not found: pass the folder that holds {METADATA}")
        if not (folder / METADATA).is_file():
            raise FileNotFoundError(f"{folder / METADATA} not found: the official layout is a folder of images "
                                    f"plus {METADATA} with file_name, text (simple prompt), prompt (complex prompt)")


def list_rows(cfg: Config, state_dir: Path | None = None) -> Iterator[dict[str, Any]]:
    inner = manifest.Config(path=str(Path(cfg.path) / METADATA), format="jsonl", image_col="file_name",
                            prompt_col="prompt", simple_col="text", id_col="file_name",
                            source_name=cfg.source_name)
    return manifest.list_rows(inner, state_dir)
