"""A card's figures → Croissant 1.0 JSON-LD (MLCommons) with the Responsible-AI vocabulary (RAI 1.0).

The @context is Croissant 1.0's standard one (as mlcroissant writes it and the specification's example datasets
use) plus the ``rai`` namespace. Record sets describe the files a card sits beside: ``provenance.parquet`` always,
and a release's ``data/<split>/metadata.jsonl`` + images or ``urls.parquet``. `mlcroissant` validates it and reads its
records (tests do both); it is not needed to write it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pyarrow as pa

CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract",
    "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
    "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath",
    "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
    "transform": "cr:transform",
}  # fmt: skip
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
RAI_CONFORMS_TO = "http://mlcommons.org/croissant/RAI/1.0"
DATA_TYPES = {pa.string(): "sc:Text", pa.float64(): "sc:Float", pa.int64(): "sc:Integer"}


def _id(name: str) -> str:
    return name.replace(" ", "_")


def file_object(name: str, path: str, data: bytes | None, encoding: str, sha256: str | None = None) -> dict[str, Any]:
    """A FileObject for a file beside the card (its sha256 from the bytes written, or given)."""
    digest = sha256 or hashlib.sha256(data or b"").hexdigest()
    return {"@type": "cr:FileObject", "@id": _id(name), "name": name, "contentUrl": path, "encodingFormat": encoding,
            "sha256": digest}


def file_set(name: str, includes: str, encoding: str) -> dict[str, Any]:
    return {"@type": "cr:FileSet", "@id": _id(name), "name": name, "includes": includes, "encodingFormat": encoding}


def column_fields(record_set: str, source: dict[str, str], columns: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Fields read from columns of a file: (column, croissant data type)."""
    return [{"@type": "cr:Field", "@id": f"{record_set}/{c}", "name": c, "dataType": t,
             "source": {**source, "extract": {"column": c}}} for c, t in columns]


def provenance_record_set(table: pa.Table) -> dict[str, Any]:
    cols = [(f.name, DATA_TYPES[f.type]) for f in table.schema]
    return {"@type": "cr:RecordSet", "@id": "provenance", "name": "provenance",
            "description": "One row per sample ever seen: source, licence, hashes, scores, each stage's decision.",
            "key": {"@id": "provenance/key"},
            "field": column_fields("provenance", {"fileObject": "provenance.parquet"}, cols)}


def _collection_types(figs: dict[str, Any]) -> list[str]:
    local = {"manifest", "folder", "sample"}
    kinds = {"Web Scraping" if name not in local else "Manual Curation" for name in figs["sources"]}
    return sorted(kinds)


def _rai(figs: dict[str, Any], about: Any) -> dict[str, Any]:
    """The RAI properties, each from the run (or the --about file where only a person knows)."""
    funnel = "; ".join(f"{f['stage']}: {f['kept']} of {f['in']} kept"
                       + (f" ({', '.join(f'{r} {n}' for r, n in f['rejected'].items())})" if f["rejected"] else "")
                       for f in figs["funnel"])
    sources = "; ".join(f"{name}: {s['seen']} seen, {s['kept']} kept, licences {s['licenses']}"
                        for name, s in figs["sources"].items())
    rv = figs["review"]
    out: dict[str, Any] = {
        "rai:dataCollection": f"Collected by surd from: {sources}. robots.txt {figs['robots']['robots_txt']}, "
                              f"opt-out headers {figs['robots']['opt_out_headers']}; refusals {figs['refusals'] or 'none'}.",
        "rai:dataCollectionType": _collection_types(figs),
        "rai:dataPreprocessingProtocol": [f"Every stage with every reject reason: {funnel}."],
        "rai:dataAnnotationProtocol": [
            "Simple prompts: an image captioning model (see the models in the card); CLIP filter keeps a sample when "
            "cos(image, simple) >= cos(image, complex)."
            + (f" Manual review: {rv['kept']} of {rv['in']} kept, reviewers {rv['reviewers'] or 'not recorded'}, "
               f"agreement {rv['agreement'] or 'not computed'}." if rv else " No manual review in this run.")],
        "rai:machineAnnotationTools": sorted({f"{m['id']}" for m in figs["models"] if m["role"] != "output"}),
        "rai:personalSensitiveInformation": about.text("personal_information"),
        "rai:dataLimitations": about.text("limitations"),
        "rai:dataUseCases": about.text("uses"),
        "rai:dataReleaseMaintenancePlan": about.text("maintenance"),
        "rai:dataBiases": f"Sources: {', '.join(figs['sources'])}; NSFW-rated samples kept: {figs['nsfw_kept']}.",
    }
    if figs["fetched"]:
        out["rai:dataCollectionTimeFrame"] = [figs["fetched"]["start"], figs["fetched"]["end"]]
    return out


def metadata(figs: dict[str, Any], about: Any, card_meta: dict[str, Any], provenance: pa.Table,
             provenance_sha256: str, files: list[dict[str, Any]], record_sets: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole JSON-LD document: dataset metadata, RAI fields, the files beside the card and their record sets."""
    license_ = card_meta.get("license")
    licenses = ([f"https://huggingface.co/datasets?license=license:{license_}"] if license_ != "other" else
                [f"{name} (see LICENSE.md)" for name in figs["licenses"]])
    return {
        "@context": CONTEXT, "@type": "sc:Dataset", "name": _id(card_meta["pretty_name"]),
        "description": about.get("summary") or f"Text-to-image pairs built with surd from {', '.join(figs['sources'])}:"
                       f" {figs['kept']} samples kept of {figs['seen']} seen.",
        "conformsTo": [CONFORMS_TO, RAI_CONFORMS_TO], "license": licenses,
        "url": about.get("homepage") or "https://arxiv.org/abs/2305.05189",
        "version": "1.0.0", "datePublished": dt.date.today().isoformat(),
        "keywords": card_meta["tags"], "inLanguage": card_meta["language"],
        "citeAs": about.get("citation") or "SUR-adapter, arXiv 2305.05189 (the method); this dataset: "
                                           f"{card_meta['pretty_name']}",
        "creator": {"@type": "sc:Person", "name": about.get("maintainer") or "unknown (set maintainer in --about)"},
        **_rai(figs, about),
        "distribution": [*files, file_object("provenance.parquet", "provenance.parquet", None,
                                             "application/x-parquet", provenance_sha256)],
        "recordSet": [*record_sets, provenance_record_set(provenance)],
    }  # fmt: skip
