"""A run (or a release) → its card: ``README.md`` (a Hugging Face dataset card: YAML metadata + the seven datasheet
sections), ``croissant.json`` (Croissant + RAI), ``card.html`` (the same with plots), ``provenance.parquet`` (one row
per sample ever seen) and ``LICENSE.md`` (licence and terms per source), all from the run's own records.

What a run cannot know (motivation, maintainer, intended uses) comes from a small YAML file (``--about``); every
place still waiting for a person says so with ``NEEDS A PERSON``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

import surd
from surd import storage
from surd.export import card_html, croissant
from surd.export.figures import figures, rate
from surd.export.runinfo import RunInfo, read_run

NEEDS_PERSON = "NEEDS A PERSON"
ABOUT_KEYS = {"pretty_name", "summary", "motivation", "funding", "maintainer", "contact", "uses", "out_of_scope",
              "language", "citation", "homepage", "sources", "limitations", "maintenance", "personal_information"}
# Licence strings sources record → Hugging Face licence identifiers (anything else: "other" + LICENSE.md).
HF_LICENSES = {"cc0-1.0": "cc0-1.0", "cc-by-4.0": "cc-by-4.0", "cc-by-sa-4.0": "cc-by-sa-4.0", "mit": "mit",
               "cc-by-nc-4.0": "cc-by-nc-4.0", "apache-2.0": "apache-2.0", "pddl": "pddl", "odc-by": "odc-by",
               "creativeml-openrail-m": "creativeml-openrail-m", "openrail": "openrail"}
SOURCE_DATASETS = {"diffusiondb": "extended|poloclub/diffusiondb"}  # sources that are themselves datasets
PROVENANCE = "provenance.parquet"


@dataclass(frozen=True)
class About:
    """What only a person knows, from ``--about FILE`` (YAML); missing fields are marked NEEDS A PERSON."""

    fields: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def text(self, key: str) -> str:
        value = self.fields.get(key)
        if isinstance(value, list):
            return "\n".join(f"- {v}" for v in value)
        return str(value).strip() if value else f"**{NEEDS_PERSON}:** set `{key}` in the `--about` file."


def load_about(path: str | os.PathLike | None) -> About:
    """Read the ``--about`` YAML; unknown keys are an error naming the known ones."""
    if not path:
        return About()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--about file {p} not found")
    doc = yaml.safe_load(p.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{p}: expected a mapping of fields ({', '.join(sorted(ABOUT_KEYS))})")
    unknown = sorted(set(doc) - ABOUT_KEYS)
    if unknown:
        raise ValueError(f"{p}: unknown field(s) {unknown}; known: {', '.join(sorted(ABOUT_KEYS))}")
    if "sources" in doc and not isinstance(doc["sources"], dict):
        raise ValueError(f"{p}: sources must map a source name to {{license_link, terms}}")
    return About(doc)


@dataclass
class Distribution:
    """The data files a card describes (paths relative to the card), and how `datasets` loads them."""

    configs: list[dict[str, Any]]  # README `configs`
    info: list[dict[str, Any]]  # README `dataset_info`
    files: list[dict[str, Any]] = field(default_factory=list)  # Croissant FileObject/FileSet entries
    record_sets: list[dict[str, Any]] = field(default_factory=list)  # Croissant RecordSets over those files
    note: str = ""


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    return next((label for bound, label in bounds if n < bound), "100M<n<1B")


def licence_meta(licenses: dict[str, int]) -> dict[str, str]:
    """The card's ``license`` fields: one known licence as its identifier; several (or unknown ones) as ``other``
    with the per-source terms in LICENSE.md."""
    ids = {HF_LICENSES.get(name.lower().strip()) for name in licenses}
    if len(licenses) == 1 and None not in ids:
        return {"license": ids.pop()}  # type: ignore[dict-item]
    return {"license": "other", "license_name": "per-source-licenses", "license_link": "LICENSE.md"}


def provenance_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The provenance rows as a table: every column a string except the scores, sizes (numbers or null)."""
    numeric = {"width", "height", "clip_simple_score", "clip_complex_score", "nsfw_score"}
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    data = {}
    for c in columns:
        if c in numeric:
            data[c] = pa.array([r.get(c) for r in rows], pa.int64() if c in ("width", "height") else pa.float64())
        else:
            data[c] = pa.array([str(r.get(c) if r.get(c) is not None else "") for r in rows], pa.string())
    return pa.table(data)


def write_provenance(rows: list[dict[str, Any]], path: str) -> tuple[pa.Table, str]:
    """Write provenance.parquet; returns the table and the sha256 of the bytes written."""
    table = provenance_table(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    with storage.open_file(path, "wb") as f:
        f.write(buf.getvalue())
    return table, hashlib.sha256(buf.getvalue()).hexdigest()


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def front_matter(figs: dict[str, Any], about: About, dist: Distribution) -> dict[str, Any]:
    """The YAML metadata block of the Hugging Face dataset card."""
    tags = ["surd", "sur-adapter", "text-to-image", "prompts", *sorted(figs["sources"])]
    if figs["nsfw_kept"]:
        tags.append("not-for-all-audiences")
    language = about.get("language") or ["en"]
    meta: dict[str, Any] = {
        "pretty_name": about.get("pretty_name") or f"{figs['name']} (built with surd)",
        **licence_meta(figs["licenses"]),
        "task_categories": ["text-to-image"],
        "language": language if isinstance(language, list) else [language],
        "size_categories": [size_category(figs["kept"])],
        "source_datasets": sorted({SOURCE_DATASETS.get(s, "original") for s in figs["sources"]}),
        "tags": tags,
        "configs": dist.configs,
        "dataset_info": dist.info,
    }
    return meta


def _table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return "\n".join(out)


def _funnel_md(figs: dict[str, Any]) -> str:
    rows = []
    for f in figs["funnel"]:
        reasons = ", ".join(f"{r} {n:,}" for r, n in f["rejected"].items()) or "none"
        rows.append([f["stage"], f"{f['in']:,}", f"{f['kept']:,}", _pct(f["keep_rate"]), reasons])
    return _table(["stage", "in", "kept", "kept %", "rejected (reason count)"], rows)


def _sources_md(figs: dict[str, Any], about: About) -> str:
    terms = about.get("sources") or {}
    rows = []
    for name, s in figs["sources"].items():
        t = terms.get(name) or {}
        lic = "; ".join(f"{k} ({n:,})" for k, n in s["licenses"].items())
        refused = ", ".join(f"{k} {n:,}" for k, n in s["refusals"].items()) or "none"
        rows.append([name, f"{s['seen']:,}", f"{s['kept']:,}", lic, t.get("terms") or t.get("license_link") or NEEDS_PERSON,
                     refused, _pct(s["nsfw_rate"])])
    return _table(["source", "seen", "kept", "licence (samples)", "terms", "robots/opt-out refusals",
                   "NSFW-rated"], rows)


def _lengths_md(figs: dict[str, Any]) -> str:
    pl = figs["prompt_lengths"]
    rows = [[kind, v["n"], v["mean"], v["median"], v["max"]] for kind, v in pl.items()]
    return _table(["prompt", "samples", "mean words", "median", "max"], rows)


def _models_md(figs: dict[str, Any]) -> str:
    rows = [[m["stage"], m["role"], f"`{m['id']}`", m.get("revision") or "", m.get("sha256") or m.get("config_sha256")
             or "", m.get("kind", "")] for m in figs["models"]]
    return _table(["stage", "role", "id", "revision", "sha256", "kind"], rows) if rows else "No model was run."


def _versions_md(figs: dict[str, Any]) -> str:
    rows = [[v["stage"], v["surd"] or "?", f"`{v['config_sha256'][:16]}`" if v["config_sha256"] else "",
             ", ".join(f"{k} {x}" for k, x in sorted(v["libraries"].items()))] for v in figs["versions"]]
    return _table(["stage", "surd", "config sha256 (first 16)", "libraries"], rows)


def body(figs: dict[str, Any], about: About, dist: Distribution, release: dict[str, Any] | None) -> str:
    """The datasheet (Gebru et al.): motivation, composition, collection, preprocessing, uses, distribution,
    maintenance, each filled from the run where the run knows the answer."""
    clip, nd, rv = figs["clip_filter"], figs["near_duplicates"], figs["review"]
    fetched, created = figs["fetched"], figs["created"]
    what = "release" if release else "run"
    parts = [f"# {about.get('pretty_name') or figs['name']}", "",
             about.get("summary") or f"Text-to-image pairs (complex prompt, image, simple prompt) built with surd "
             f"{surd.__version__} (SUR-adapter, arXiv 2305.05189). Every figure below is computed from the {what}'s "
             "own records (`surd card`).", "",
             "## Motivation", "", about.text("motivation"), "", f"Funding: {about.text('funding')}", "",
             "## Composition", "",
             f"{figs['kept']:,} samples kept of {figs['seen']:,} seen (final stage `{figs['final_stage']}`). Each "
             "sample: an image (512², JPEG), its complex prompt (from the source), a simple prompt (BLIP caption), "
             "the negative prompt, the source, source id, URL and licence; `provenance.parquet` has one row per "
             "sample ever seen with every stage's decision and reason.", "",
             _sources_md(figs, about), "",
             f"NSFW-rated samples kept: {figs['nsfw_kept']:,} (levels of the kept samples: "
             f"{', '.join(f'{k} {n:,}' for k, n in figs['nsfw_levels_kept'].items()) or 'none'}; `nsfw` = the source "
             "rates it unsafe or the safety classifier scored it at or over its threshold, `unrated` = no rating).",
             "", f"Personal and sensitive information: {about.text('personal_information')}", "",
             "## Collection process", "",
             f"Fetched between {fetched['start']} and {fetched['end']} (when each ingest shard was committed)."
             if fetched else "No fetch time recorded.",
             f" Images created (per the source) between {created['start']} and {created['end']}." if created else "",
             "", f"robots.txt: {figs['robots']['robots_txt']}; `X-Robots-Tag: noai` opt-outs: "
             f"{figs['robots']['opt_out_headers']}. Refusals: "
             f"{', '.join(f'{k} {n:,}' for k, n in figs['refusals'].items()) or 'none'}.", "",
             "## Preprocessing, cleaning and labelling", "", "Every stage, with every reason a sample was dropped:",
             "", _funnel_md(figs), ""]
    if nd:
        parts += [f"Near-duplicates ({nd['stage']}, 64-bit pHash): {nd['rejected']:,} of {nd['in']:,} "
                  f"({_pct(nd['rate'])}).", ""]
    if clip:
        parts += [f"CLIP filter ({clip['stage']}, keep if cos(image, simple) ≥ cos(image, complex)): kept "
                  f"{clip['kept']:,} of {clip['in']:,} = {_pct(clip['rate'])} (the paper: "
                  f"{clip['paper']['kept']:,} of {clip['paper']['in']:,} = {_pct(clip['paper_rate'])}).", ""]
    if rv:
        ag = rv["agreement"]
        parts += [f"Manual review: {rv['kept']:,} of {rv['in']:,} kept; reviewers: "
                  f"{', '.join(f'{k} ({n:,})' for k, n in rv['reviewers'].items()) or 'not recorded'}; agreement: "
                  + (f"{ag['percent']}% of {ag['paired']:,} paired decisions, Cohen's kappa {ag['kappa']}" if ag and
                     ag["paired"] else "no paired decisions"), ""]
    else:
        parts += ["Manual review: none in this run.", ""]
    parts += ["Prompt lengths of the kept samples (words; the paper's Fig. 4):", "", _lengths_md(figs), "",
              "Models:", "", _models_md(figs), "", f"surd {surd.__version__} wrote this card. Stages and configs:",
              "", _versions_md(figs), "",
              "## Uses", "", about.text("uses"), "", f"Out of scope: {about.text('out_of_scope')}", "",
              f"Limitations: {about.text('limitations')}", "",
              "## Distribution", "", _distribution_md(figs, dist, release), "",
              "## Maintenance", "", f"Maintainer: {about.text('maintainer')} ({about.text('contact')})", "",
              about.text("maintenance"), ""]
    if about.get("citation"):
        parts += ["## Citation", "", "```", str(about.get("citation")).strip(), "```", ""]
    return "\n".join(parts)


def _distribution_md(figs: dict[str, Any], dist: Distribution, release: dict[str, Any] | None) -> str:
    lines = [f"Licences of the kept samples: {', '.join(f'{k} ({n:,})' for k, n in figs['licenses'].items())} "
             "(terms per source: LICENSE.md)."]
    if release:
        lines.append(f"This release (`surd release --mode {release['mode']}`) holds {release['released']:,} samples; "
                     f"left out by its rules: {', '.join(f'{k} {n:,}' for k, n in release['excluded'].items()) or 'none'}"
                     f" (rules: `{json.dumps(release['rules'], sort_keys=True)}`).")
        if release["mode"] == "urls":
            lines.append("No image bytes are distributed: `urls.parquet` lists each image's URL and sha256; "
                         "`surd run rebuild.yaml` (from this folder) downloads them again and rejects any image whose "
                         "bytes changed as `hash_mismatch`.")
    if dist.note:
        lines.append(dist.note)
    return "\n\n".join(lines)


def licence_file(figs: dict[str, Any], about: About) -> str:
    terms = about.get("sources") or {}
    lines = ["# Licences and terms per source", "",
             "Written by `surd card` from the licence each sample's source recorded. Using the data means following "
             "the terms of each source listed here.", ""]
    for name, s in figs["sources"].items():
        t = terms.get(name) or {}
        lines += [f"## {name}", "", *(f"- {k}: {n:,} sample(s) seen" for k, n in s["licenses"].items()),
                  f"- licence link: {t.get('license_link') or NEEDS_PERSON}", f"- terms: {t.get('terms') or NEEDS_PERSON}", ""]
    return "\n".join(lines)


def provenance_info(table: pa.Table) -> dict[str, Any]:
    """The `dataset_info` entry of the provenance config: features from the parquet schema, split sizes."""
    dtypes = {pa.string(): "string", pa.float64(): "float64", pa.int64(): "int64"}
    return {"config_name": "provenance",
            "features": [{"name": f.name, "dtype": dtypes[f.type]} for f in table.schema],
            "splits": [{"name": "train", "num_bytes": table.nbytes, "num_examples": table.num_rows}]}


def run_distribution(run: RunInfo) -> Distribution:
    """A run card's data: provenance.parquet (added by `write_card`). The samples stay in the final stage's
    webdataset shards, whose json members vary in shape from source to source (a struct here, null there), which
    `datasets` cannot cast to one schema: `surd release` writes the folder it loads."""
    return Distribution([], [], note=f"The samples themselves are the webdataset shards of `{run.final.path}`; "
                                     "`surd release` makes a folder that `datasets.load_dataset` reads as it is.")


def write_card(run: RunInfo, out: str, about: About, *, rows: list[dict[str, Any]] | None = None,
               dist: Distribution | None = None, release: dict[str, Any] | None = None) -> dict[str, str]:
    """Write README.md, croissant.json, card.html, provenance.parquet and LICENSE.md into *out*; returns their paths.

    *rows* restricts the per-sample figures and provenance to a release (default: every sample of the run)."""
    out = storage.normalize(out)
    storage.makedirs(out)
    rows = run.rows if rows is None else rows
    figs = figures(run, rows)
    paths = {name: storage.join(out, name) for name in ("README.md", "croissant.json", "card.html", PROVENANCE,
                                                         "LICENSE.md")}
    table, table_sha = write_provenance(rows, paths[PROVENANCE])
    dist = dist or run_distribution(run)
    # `datasets` picks one builder for every config of a folder, from the first config's files: provenance.parquet
    # is a config only beside other parquet data (or alone); otherwise croissant.json and the body describe it.
    parquet = all(f["path"].endswith(".parquet") for c in dist.configs for f in c["data_files"])
    if parquet and not any(c["config_name"] == "provenance" for c in dist.configs):
        dist.configs.append({"config_name": "provenance", "data_files": [{"split": "train", "path": PROVENANCE}]})
        dist.info.append(provenance_info(table))
    meta = front_matter(figs, about, dist)
    readme = "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + body(figs, about, dist,
                                                                                                     release)
    texts = {"README.md": readme, "LICENSE.md": licence_file(figs, about),
             "croissant.json": json.dumps(croissant.metadata(figs, about, meta, table, table_sha, dist.files,
                                                             dist.record_sets), indent=2, ensure_ascii=False) + "\n",
             "card.html": card_html.page(figs, meta, readme_body=body(figs, about, dist, release))}
    for name, text in texts.items():
        with storage.open_file(paths[name], "wb") as f:
            f.write(text.encode())
    return paths


def card(run_dir: str, out: str | None = None, about: str | None = None) -> dict[str, Any]:
    """`surd card RUN`: the card of a run, written into *out* (default: the run folder itself)."""
    run = read_run(run_dir)
    paths = write_card(run, out or run.path, load_about(about))
    needs = sum(t.count(NEEDS_PERSON) for t in (storage.read_text(paths["README.md"]),))
    return {"paths": paths, "kept": run.final.kept, "seen": len(run.rows), "needs_person": needs,
            "keep_rate": rate(run.final.kept, len(run.rows))}


@dataclass(frozen=True)
class CardConfig:
    """The pipeline's ``card`` step: ``about``, the YAML of what only a person knows (motivation, maintainer, ...)."""

    about: str | None = None


def run_job(input_dir: str | None, output_dir: str, config: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's ``card`` step: the card of the run it ends (the folder above *output_dir*), written into
    *output_dir* (config: ``about``, the YAML of what only a person knows)."""
    unknown = sorted(set(config) - {"about"})
    if unknown:
        raise ValueError(f"card: unknown config key(s) {unknown}; allowed: about")
    if input_dir is None:
        raise ValueError("card: put the card step after the stages it describes")
    return card(storage.parent(output_dir), output_dir, config.get("about"))

