"""`surd ingest manifest|folder|civitai|lexica|sdonline|diffusiondb|urls|webdataset|hf`: sources into a dataset of
resized images.

Local sources read files; web sources go through the polite, safe downloader (`surd.fetch.http`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from surd.commands.common import ADDRESS, EXECUTOR, RETRIES, WORKERS, run_and_report

ingest_app = typer.Typer(help="Create a dataset from a source (local manifest, image folder, web APIs, URL lists).\n\n"
                         "Example: surd ingest manifest manifests/sample/manifest.jsonl --out runs/mine/00_ingest",
                         no_args_is_help=True)

OUT = typer.Option(..., "--out", "-o", help="Output dataset directory or URL (rerun the same command to resume).")
THREADS = typer.Option(16, help="Concurrent downloads per worker process.")
TIMEOUT = typer.Option(20.0, help="Seconds for connecting, for each read, and for one whole attempt.")
DL_RETRIES = typer.Option(3, "--download-retries", help="Extra attempts on 408/429/5xx, timeouts and resets.")
RATE = typer.Option(10.0, "--rate-limit", help="Requests per second per host, all workers together (0 = no limit).")
PRIVATE = typer.Option(False, "--allow-private-addresses",
                       help="Let URLs reach loopback/private/link-local addresses (turns the SSRF guard off).")
OPT_OUT = typer.Option(False, "--ignore-opt-out", help="Download even when X-Robots-Tag says noai/noimageai.")
ROBOTS = typer.Option(False, "--ignore-robots",
                      help="Fetch even what robots.txt disallows (recorded in the saved config).")
SIZE = typer.Option(512, help="Output side in pixels.")
MODE = typer.Option("center_crop", "--resize-mode", help="center_crop (the paper's), keep_ratio, pad, or none.")
QUALITY = typer.Option(95, help="JPEG/WebP quality.")
MIN_SIZE = typer.Option(64, help="Reject images whose shorter side is below this.")
MAX_PIXELS = typer.Option(89_478_485, help="Reject images with more pixels (decompression bombs).")
SHARD = typer.Option(1000, "--shard-size", help="Samples per shard.")
MAX_ITEMS = typer.Option(0, "--max-items", help="Stop listing after this many items (0 = all).")
RESAMPLE = typer.Option("lanczos", help="Resize filter: lanczos (sharpest), bicubic, or area (img2dataset's INTER_AREA).")


def download_options(threads: int, timeout: float, retries: int, rate_limit: float, allow_private: bool,
                     ignore_opt_out: bool, workers: int | None, ignore_robots: bool = False) -> dict[str, Any]:
    """The `download:` config; the per-host rate is split across worker processes (each limits its own share).

    robots.txt is only named when it is ignored, so configs saved before the option existed still match."""
    options = {"threads": threads, "timeout": timeout, "retries": retries,
               "rate_limit": rate_limit / max(1, workers or 1), "allow_private": allow_private,
               "respect_opt_out": not ignore_opt_out}
    return {**options, "respect_robots": False} if ignore_robots else options


def image_options(size: int, resize_mode: str, quality: int, min_size: int, shard_size: int,
                  resample: str) -> dict[str, Any]:
    """Image and shard settings; the filter is only named when it is not ingest's default (lanczos)."""
    image: dict[str, Any] = dict(size=size, resize_mode=resize_mode, quality=quality, min_size=min_size,
                                 shard_size=shard_size)
    if resample != "lanczos":
        image["resample"] = resample
    return image


def run_ingest(source: str, path: str, out: str, *, options: dict[str, Any] | None = None,
               download: dict[str, Any] | None = None, workers: int | None = None, retries: int = 2,
               executor: str | None = None, address: str | None = None, **image_and_shard: Any) -> None:
    """Shared body of every `surd ingest <source>` command."""
    cfg = {"source": source, "path": path, "options": options or {}, "download": download or {}, **image_and_shard}
    run_and_report("ingest", cfg, out, None, workers=workers, retries=retries, executor=executor, address=address)


def _run(source: str, path: str, out: str, options: dict[str, Any], download: dict[str, Any], workers: int | None,
         retries: int, image: dict[str, Any]) -> None:
    run_ingest(source, path, out, options=options, download=download, workers=workers, retries=retries, **image)


@ingest_app.command("manifest")
def ingest_manifest(
    manifest: str = typer.Argument(..., help="A .jsonl, .csv, .tsv or .parquet file, one row per sample."),
    out: str = typer.Option(..., "--out", "-o", help="Output dataset directory (or URL)."),
    image_col: str = typer.Option("image", help="Column with the image path or file:// URL (relative to the manifest)."),
    prompt_col: str = typer.Option("complex_prompt", help="Column with the complex (keyword) prompt."),
    negative_col: str = typer.Option("negative_prompt", help="Column with the negative prompt (optional)."),
    simple_col: str = typer.Option("simple_prompt", help="Column with a simple prompt, if you already have one."),
    id_col: str = typer.Option("source_id", help="Column with a stable id (default: the image path)."),
    source_col: str = typer.Option("source", help="Column naming each row's source (optional)."),
    license_col: str = typer.Option("license", help="Column with each row's license (optional)."),
    source_name: str = typer.Option("local", help="Source name when there is no source column."),
    size: int = SIZE, resize_mode: str = MODE, resample: str = RESAMPLE, quality: int = QUALITY,
    min_size: int = MIN_SIZE, max_pixels: int = MAX_PIXELS, shard_size: int = SHARD,
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Ingest a local manifest of (complex prompt, image) rows.

    Example: surd ingest manifest manifests/sample/manifest.jsonl --out runs/mine/00_ingest --workers 2
    """
    opts = dict(image_col=image_col, prompt_col=prompt_col, negative_col=negative_col, simple_col=simple_col,
                id_col=id_col, source_col=source_col, license_col=license_col, source_name=source_name)
    run_ingest("manifest", str(manifest), out, options=opts, size=size, resize_mode=resize_mode, resample=resample,
               quality=quality, min_size=min_size, max_pixels=max_pixels, shard_size=shard_size, workers=workers,
               retries=retries, executor=executor, address=address)


@ingest_app.command("folder")
def ingest_folder(
    folder: Path = typer.Argument(..., help="Folder of images + metadata.jsonl/.csv (file_name, text, prompt)."),
    out: str = typer.Option(..., "--out", "-o", help="Output dataset directory (or URL)."),
    prompt_col: str = typer.Option("prompt", help="Metadata column with the complex prompt."),
    simple_col: str = typer.Option("text", help="Metadata column with the simple prompt (BLIP caption)."),
    image_col: str = typer.Option("file_name", help="Metadata column with the image file name."),
    source_name: str = typer.Option("surd", help="Source name when the metadata has no source column."),
    size: int = SIZE, resize_mode: str = MODE, resample: str = RESAMPLE, quality: int = QUALITY,
    min_size: int = MIN_SIZE, shard_size: int = SHARD,
    workers: int = WORKERS, retries: int = RETRIES, executor: str = EXECUTOR, address: str = ADDRESS,
) -> None:
    """Import an image folder: the official SUR-adapter layouts, Hugging Face imagefolder, `surd export imagefolder`.

    Example: surd ingest folder SUR-adapter/data_collect --out runs/surd/00_ingest
    """
    opts = dict(prompt_col=prompt_col, simple_col=simple_col, image_col=image_col, source_name=source_name)
    image = image_options(size, resize_mode, quality, min_size, shard_size, resample)
    run_ingest("folder", str(folder), out, options=opts, workers=workers, retries=retries, executor=executor,
               address=address, **image)


def civitai(
    out: str = OUT,
    model_id: int = typer.Option(None, help="Only images made with this model."),
    model_version_id: int = typer.Option(None, help="Only images made with this model version."),
    username: str = typer.Option("", help="Only this user's images."),
    base_model: list[str] = typer.Option([], "--base-model", help="Base model filter, repeatable (e.g. 'SD 1.5')."),
    period: str = typer.Option("AllTime", help="AllTime, Year, Month, Week or Day."),
    sort: str = typer.Option("Most Reactions", help="Most Reactions, Most Comments, Most Collected, Newest, Oldest."),
    nsfw: str = typer.Option("", help="NSFW level: None, Soft, Mature, X (empty = the API default)."),
    browsing_level: int = typer.Option(None, help="Browsing level flags: 1 PG, 2 PG-13, 4 R, 8 X, 16 XXX (summed)."),
    limit: int = typer.Option(200, help="Items per API page (at most 200)."),
    max_items: int = MAX_ITEMS,
    base_url: str = typer.Option("https://civitai.com", help="API root (a mirror or a test server)."),
    token_env: str = typer.Option("CIVITAI_API_TOKEN", help="Environment variable with your API token (optional)."),
    workers: int = WORKERS, retries: int = RETRIES, threads: int = THREADS, timeout: float = TIMEOUT,
    download_retries: int = DL_RETRIES, rate_limit: float = RATE, allow_private_addresses: bool = PRIVATE,
    ignore_opt_out: bool = OPT_OUT, ignore_robots: bool = ROBOTS, size: int = SIZE, resize_mode: str = MODE,
    quality: int = QUALITY, min_size: int = MIN_SIZE, shard_size: int = SHARD, resample: str = RESAMPLE,
) -> None:
    """Ingest Civitai images with their generation prompts (full-size originals; items without a prompt rejected).

    Example: CIVITAI_API_TOKEN=... surd ingest civitai --base-model "SD 1.5" --max-items 5000 --out runs/civ/00_ingest
    """
    dl = download_options(threads, timeout, download_retries, rate_limit, allow_private_addresses, ignore_opt_out,
                          workers, ignore_robots)
    opts = dict(model_id=model_id, model_version_id=model_version_id, username=username, base_models=base_model,
                period=period, sort=sort, nsfw=nsfw, browsing_level=browsing_level, limit=limit, max_items=max_items,
                base_url=base_url, token_env=token_env, http=dl)
    image = image_options(size, resize_mode, quality, min_size, shard_size, resample)
    _run("civitai", "", out, opts, dl, workers, retries, image)


def lexica(
    query: list[str] = typer.Option(..., "--query", "-q", help="Search query, repeatable."),
    out: str = OUT,
    include_nsfw: bool = typer.Option(False, help="Keep items Lexica flags nsfw (rejected as nsfw otherwise)."),
    max_items: int = MAX_ITEMS,
    mode: str = typer.Option("search", help="search: /api/v1/search (<= 50 images a query); cursor: the paged "
                             "/api/infinite-prompts listing, resumable (for a dataset)."),
    max_pages: int = typer.Option(0, help="Cursor mode: pages per query (0 = until the listing ends)."),
    search_mode: str = typer.Option("images", help="Cursor mode: searchMode sent (images or trending)."),
    model: str = typer.Option("lexica-aperture-v2", help="Cursor mode: model filter sent."),
    image_base: str = typer.Option("https://image.lexica.art/full_jpg/",
                                   help="Cursor mode: full-size image URL prefix (+ image id)."),
    base_url: str = typer.Option("https://lexica.art", help="API root (a mirror or a test server)."),
    workers: int = WORKERS, retries: int = RETRIES, threads: int = THREADS, timeout: float = TIMEOUT,
    download_retries: int = DL_RETRIES, rate_limit: float = RATE, allow_private_addresses: bool = PRIVATE,
    ignore_opt_out: bool = OPT_OUT, ignore_robots: bool = ROBOTS, size: int = SIZE, resize_mode: str = MODE,
    quality: int = QUALITY, min_size: int = MIN_SIZE, shard_size: int = SHARD, resample: str = RESAMPLE,
) -> None:
    """Ingest Lexica search results (prompt, full-size image, model, seed); --mode cursor pages through every result.

    Example: surd ingest lexica -q "cyberpunk city" --mode cursor --max-pages 40 --out runs/lex/00_ingest
    """
    dl = download_options(threads, timeout, download_retries, rate_limit, allow_private_addresses, ignore_opt_out,
                          workers, ignore_robots)
    opts = dict(queries=query, include_nsfw=include_nsfw, max_items=max_items, base_url=base_url, http=dl)
    cursor_opts = dict(max_pages=max_pages, search_mode=search_mode, model=model, image_base=image_base)
    if mode != "search":  # search mode's options stay as before, so its saved configs still match
        opts.update(mode=mode, **cursor_opts)
    elif cursor_opts != dict(max_pages=0, search_mode="images", model="lexica-aperture-v2",
                             image_base="https://image.lexica.art/full_jpg/"):
        raise typer.BadParameter("--max-pages, --search-mode, --model and --image-base need --mode cursor")
    image = image_options(size, resize_mode, quality, min_size, shard_size, resample)
    _run("lexica", "", out, opts, dl, workers, retries, image)


def diffusiondb(
    metadata: str = typer.Argument(..., help="DiffusionDB metadata.parquet: a local path or an http(s) URL."),
    out: str = OUT,
    parts: str = typer.Option("", help="Folder or base URL of part-NNNNNN.zip (default: <metadata folder>/images)."),
    part_id: list[int] = typer.Option([], "--part-id", help="Only this part, repeatable (default: all)."),
    max_image_nsfw: float = typer.Option(None, help="Reject images whose image_nsfw score is above this."),
    max_prompt_nsfw: float = typer.Option(None, help="Reject rows whose prompt_nsfw score is above this."),
    max_items: int = MAX_ITEMS,
    workers: int = WORKERS, retries: int = RETRIES, threads: int = THREADS, timeout: float = TIMEOUT,
    download_retries: int = DL_RETRIES, rate_limit: float = RATE, allow_private_addresses: bool = PRIVATE,
    ignore_opt_out: bool = OPT_OUT, ignore_robots: bool = ROBOTS, size: int = SIZE, resize_mode: str = MODE,
    quality: int = QUALITY, min_size: int = MIN_SIZE, shard_size: int = SHARD, resample: str = RESAMPLE,
) -> None:
    """Ingest DiffusionDB (metadata.parquet + part zips), filtered by nsfw scores.

    Example: surd ingest diffusiondb diffusiondb/metadata.parquet --part-id 1 --max-image-nsfw 0.5 --out runs/ddb/00_ingest
    """
    dl = download_options(threads, timeout, download_retries, rate_limit, allow_private_addresses, ignore_opt_out,
                          workers, ignore_robots)
    opts = dict(parts=parts, part_ids=part_id, max_image_nsfw=max_image_nsfw, max_prompt_nsfw=max_prompt_nsfw,
                max_items=max_items, http=dl)
    image = image_options(size, resize_mode, quality, min_size, shard_size, resample)
    _run("diffusiondb", metadata, out, opts, dl, workers, retries, image)


def urls(
    url_list: str = typer.Argument(..., help="CSV/TSV/JSONL/Parquet with URL and prompt columns (img2dataset style)."),
    out: str = OUT,
    url_col: str = typer.Option("", help="URL column (default: url, URL, image_url, src, ...)."),
    caption_col: str = typer.Option("", help="Prompt column (default: caption, TEXT, text, prompt, ...)."),
    negative_col: str = typer.Option("negative_prompt", help="Negative prompt column (optional)."),
    id_col: str = typer.Option("", help="Stable id column (default: the URL)."),
    source_name: str = typer.Option("urls", help="Source name recorded in each sample."),
    workers: int = WORKERS, retries: int = RETRIES, threads: int = THREADS, timeout: float = TIMEOUT,
    download_retries: int = DL_RETRIES, rate_limit: float = RATE, allow_private_addresses: bool = PRIVATE,
    ignore_opt_out: bool = OPT_OUT, ignore_robots: bool = ROBOTS, size: int = SIZE, resize_mode: str = MODE,
    quality: int = QUALITY, min_size: int = MIN_SIZE, shard_size: int = SHARD, resample: str = RESAMPLE,
) -> None:
    """Ingest a list of image URLs with prompts (the img2dataset input format works as is).

    Example: surd ingest urls laion_part.parquet --url-col URL --caption-col TEXT --workers 2 --out runs/u/00_ingest
    """
    dl = download_options(threads, timeout, download_retries, rate_limit, allow_private_addresses, ignore_opt_out,
                          workers, ignore_robots)
    opts = dict(url_col=url_col, caption_col=caption_col, negative_col=negative_col, id_col=id_col,
                source_name=source_name)
    image = image_options(size, resize_mode, quality, min_size, shard_size, resample)
    _run("urls", str(url_list), out, opts, dl, workers, retries, image)


def sdonline(
    keyword: list[str] = typer.Option(..., "--keyword", "-k", help="Prompt-gallery keyword, repeatable: lists "
                                      "/prompts/<keyword> (e.g. 'ui design')."),
    out: str = OUT,
    max_items: int = MAX_ITEMS,
    max_pages: int = typer.Option(0, help="Listing pages per keyword (0 = follow the next links to the end)."),
    base_url: str = typer.Option("https://stablediffusionweb.com", help="Site root (a mirror or a test server)."),
    workers: int = WORKERS, retries: int = RETRIES, threads: int = THREADS, timeout: float = TIMEOUT,
    download_retries: int = DL_RETRIES, rate_limit: float = RATE, allow_private_addresses: bool = PRIVATE,
    ignore_opt_out: bool = OPT_OUT, ignore_robots: bool = ROBOTS, size: int = SIZE, resize_mode: str = MODE,
    quality: int = QUALITY, min_size: int = MIN_SIZE, shard_size: int = SHARD, resample: str = RESAMPLE,
) -> None:
    """Ingest Stable Diffusion Online's prompt gallery (the paper's third site): prompts parsed from its HTML pages.

    Example: surd ingest sdonline -k "ui design" -k "oil painting" --max-pages 20 --out runs/sdo/00_ingest
    """
    dl = download_options(threads, timeout, download_retries, rate_limit, allow_private_addresses, ignore_opt_out,
                          workers, ignore_robots)
    opts = dict(keywords=keyword, max_items=max_items, max_pages=max_pages, base_url=base_url, http=dl)
    image = image_options(size, resize_mode, quality, min_size, shard_size, resample)
    _run("sdonline", "", out, opts, dl, workers, retries, image)


def webdataset(
    shards: str = typer.Argument(..., help="A .tar, a folder of tars, a glob or a {00000..00099}.tar range; local "
                                 "or a URL (img2dataset's and LAION's output as is)."),
    out: str = OUT,
    caption_ext: str = typer.Option("txt", help="Member holding the prompt (else the .json's caption)."),
    json_ext: str = typer.Option("json", help="Member holding the sample's metadata."),
    source_name: str = typer.Option("webdataset", help="Source name recorded in each sample."),
    workers: int = WORKERS, retries: int = RETRIES, threads: int = THREADS, timeout: float = TIMEOUT,
    download_retries: int = DL_RETRIES, rate_limit: float = RATE, allow_private_addresses: bool = PRIVATE,
    ignore_opt_out: bool = OPT_OUT, ignore_robots: bool = ROBOTS, size: int = SIZE, resize_mode: str = MODE,
    quality: int = QUALITY, min_size: int = MIN_SIZE, shard_size: int = SHARD, resample: str = RESAMPLE,
) -> None:
    """Ingest existing webdataset shards (image + .txt caption + .json metadata, img2dataset's .parquet).

    Example: surd ingest webdataset laion_out/ --out runs/laion/00_ingest --workers 2
    """
    dl = download_options(threads, timeout, download_retries, rate_limit, allow_private_addresses, ignore_opt_out,
                          workers, ignore_robots)
    opts = dict(caption_ext=caption_ext, json_ext=json_ext, source_name=source_name, http=dl)
    image = image_options(size, resize_mode, quality, min_size, shard_size, resample)
    _run("webdataset", shards, out, opts, dl, workers, retries, image)


def hf(
    dataset: str = typer.Argument(..., help="A hub dataset name, a save_to_disk folder, or a data folder or file."),
    out: str = OUT,
    name: str = typer.Option("", help="The dataset's config name (default: its default)."),
    split: str = typer.Option("", help="Split(s) to read, comma-separated (default: every split)."),
    revision: str = typer.Option("", help="Hub branch, tag or commit (default: main)."),
    image_col: str = typer.Option("", help="Image column (default: the first Image feature, image, img, jpg...)."),
    prompt_col: str = typer.Option("", help="Prompt column (default: prompt, complex_prompt, caption, text...)."),
    id_col: str = typer.Option("", help="Stable id column (default: __key__, key, id...; else split/row)."),
    source_name: str = typer.Option("hf", help="Source name recorded in each sample."),
    workers: int = WORKERS, retries: int = RETRIES, size: int = SIZE, resize_mode: str = MODE,
    quality: int = QUALITY, min_size: int = MIN_SIZE, shard_size: int = SHARD, resample: str = RESAMPLE,
) -> None:
    """Ingest a Hugging Face dataset through `datasets` (streamed; image and prompt columns named or detected).

    Example: surd ingest hf user/my-sd-prompts --split train --prompt-col prompt --out runs/hf/00_ingest
    """
    opts = dict(name=name, split=split, revision=revision, image_col=image_col, prompt_col=prompt_col,
                id_col=id_col, source_name=source_name)
    image = image_options(size, resize_mode, quality, min_size, shard_size, resample)
    _run("hf", dataset, out, opts, {}, workers, retries, image)


def register(app: typer.Typer) -> None:
    """Add the `surd ingest` group (every source) to the app."""
    for name, func in (("civitai", civitai), ("lexica", lexica), ("sdonline", sdonline), ("diffusiondb", diffusiondb),
                       ("urls", urls), ("webdataset", webdataset), ("hf", hf)):
        ingest_app.command(name)(func)
    app.add_typer(ingest_app, name="ingest")
