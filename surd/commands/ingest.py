"""`surd ingest manifest|folder|civitai|lexica|sdonline|diffusiondb|urls|webdataset|hf`: sources into a dataset of
resized images.

Each command is derived from the configs it fills (`surd.options`): the source's own Config (its options), ingest's
Config (image, shard and decoding settings), for web sources the `DownloadConfig` (threads, timeouts, the run-wide
rate limit, the SSRF guard, robots.txt), and the run options. An option is defined once, in its Config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import typer

from surd.commands.common import OUT_PARAM, SOURCE_RUN_PARAMS, _param, guarded, run_and_report, run_settings
from surd.fetch.http import DownloadConfig
from surd.options import cli_params, make_command, non_default, opt_of, values_from
from surd.sources import get_source
from surd.stages import build_config, get_stage

ingest_app = typer.Typer(help="Create a dataset from a source (local manifest, image folder, web APIs, URL lists).\n\n"
                         "Example: surd ingest manifest manifests/sample/manifest.jsonl --out runs/mine/00_ingest",
                         no_args_is_help=True)

DOCS = {
    "manifest": """Ingest a local manifest of (complex prompt, image) rows.

Example: surd ingest manifest manifests/sample/manifest.jsonl --out runs/mine/00_ingest --workers 2
""",
    "folder": """Import an image folder: the official SUR-adapter layouts, Hugging Face imagefolder, `surd export imagefolder`.

Example: surd ingest folder SUR-adapter/data_collect --out runs/surd/00_ingest
""",
    "civitai": """Ingest Civitai images with their generation prompts (full-size originals; items without a prompt rejected).

Example: CIVITAI_API_TOKEN=... surd ingest civitai --base-model "SD 1.5" --max-items 5000 --out runs/civ/00_ingest
""",
    "lexica": """Ingest Lexica search results (prompt, full-size image, model, seed); --mode cursor pages through every result.

Example: surd ingest lexica -q "cyberpunk city" --mode cursor --max-pages 40 --out runs/lex/00_ingest
""",
    "diffusiondb": """Ingest DiffusionDB (metadata.parquet + part zips), filtered by nsfw scores.

Example: surd ingest diffusiondb diffusiondb/metadata.parquet --part-id 1 --max-image-nsfw 0.5 --out runs/ddb/00_ingest
""",
    "urls": """Ingest a list of image URLs with prompts (the img2dataset input format works as is).

Example: surd ingest urls laion_part.parquet --url-col URL --caption-col TEXT --workers 2 --out runs/u/00_ingest
""",
    "sdonline": """Ingest Stable Diffusion Online's prompt gallery (the paper's third site): prompts parsed from its HTML pages.

Example: surd ingest sdonline -k "ui design" -k "oil painting" --max-pages 20 --out runs/sdo/00_ingest
""",
    "webdataset": """Ingest existing webdataset shards (image + .txt caption + .json metadata, img2dataset's .parquet).

Example: surd ingest webdataset laion_out/ --out runs/laion/00_ingest --workers 2
""",
    "hf": """Ingest a Hugging Face dataset through `datasets` (streamed; image and prompt columns named or detected).

Example: surd ingest hf user/my-sd-prompts --split train --prompt-col prompt --out runs/hf/00_ingest
""",
}


def _path_param(source_cfg: type) -> list[Any]:
    """A source with a file, folder or URL to read takes it as its argument (its Config's ``path``)."""
    path = next((f for f in dataclasses.fields(source_cfg) if f.name == "path"), None)
    if path is None:
        return []
    return [_param("path", typer.Argument(..., help=opt_of(path).help))]


def source_command(source: str, doc: str) -> Callable[..., None]:
    """`surd ingest <source>`, derived from the source's Config, ingest's Config and (for web sources)
    `DownloadConfig`. Nested option tables are saved with only their non-default values, as
    ``IngestConfig`` keeps them, so a command and a pipeline file that mean the same save the same config."""
    module = get_source(source)
    ingest = get_stage("ingest")
    src = cli_params(module.Config)
    own = cli_params(ingest.Config)
    web = getattr(module, "USES_NETWORK", False)
    dl = cli_params(DownloadConfig) if web else []

    def body(given: dict[str, Any]) -> None:
        options = values_from(module.Config, src, given)
        download = values_from(DownloadConfig, dl, given)
        if web and any(f.name == "http" for f in dataclasses.fields(module.Config)):
            options["http"] = non_default(DownloadConfig, download)  # the source's own API/page requests
        cfg = build_config(ingest, {"source": source, "path": str(given.get("path", "")), "options": options,
                                    "download": download, **values_from(ingest.Config, own, given)})
        run_and_report("ingest", cfg, given["out"], None, run_settings(given, SOURCE_RUN_PARAMS))

    params = [*_path_param(module.Config), OUT_PARAM, *src, *own, *dl, *SOURCE_RUN_PARAMS]
    return make_command(params, guarded(body), doc, f"ingest_{source}")


def register(app: typer.Typer) -> None:
    """Add the `surd ingest` group (every source) to the app."""
    for source, doc in DOCS.items():
        ingest_app.command(source)(source_command(source, doc))
    app.add_typer(ingest_app, name="ingest")
