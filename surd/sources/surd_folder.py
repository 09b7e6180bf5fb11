"""The official SUR-adapter dataset layout: a folder of images + metadata.jsonl (file_name, text, prompt).

``text`` is the simple (BLIP) prompt and ``prompt`` the complex one, so a released SURD imports as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from surd import storage
from surd.sources import manifest

METADATA = "metadata.jsonl"


@dataclass(frozen=True)
class Config:
    path: str = ""
    source_name: str = "surd"

    def __post_init__(self) -> None:
        if not storage.isdir(self.path):
            raise FileNotFoundError(f"SURD folder {self.path} not found: pass the folder that holds {METADATA}")
        if not storage.isfile(storage.join(self.path, METADATA)):
            raise FileNotFoundError(f"{storage.join(self.path, METADATA)} not found: the official layout is a folder "
                                    f"of images plus {METADATA} with file_name, text (simple prompt), prompt "
                                    "(complex prompt)")


def list_rows(cfg: Config, state_dir: str | None = None) -> Iterator[dict[str, Any]]:
    inner = manifest.Config(path=storage.join(cfg.path, METADATA), format="jsonl", image_col="file_name",
                            prompt_col="prompt", simple_col="text", id_col="file_name",
                            source_name=cfg.source_name)
    return manifest.list_rows(inner, state_dir)
