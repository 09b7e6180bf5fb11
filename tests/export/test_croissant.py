"""croissant.json: Croissant 1.0 + RAI, validated by mlcroissant and read through it (records equal the files)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from surd.export.card import card
from surd.export.croissant import CONFORMS_TO, RAI_CONFORMS_TO
from surd.export.release import ReleaseConfig, release
from tests.card_run import make_run

mlc = pytest.importorskip("mlcroissant")

# The RAI properties mlcroissant knows (mlcroissant._src.core.constants, namespace http://mlcommons.org/croissant/RAI/).
RAI_FIELDS = {"rai:dataCollection", "rai:dataCollectionType", "rai:dataCollectionTimeFrame",
              "rai:dataPreprocessingProtocol", "rai:dataAnnotationProtocol", "rai:personalSensitiveInformation",
              "rai:dataLimitations", "rai:dataUseCases", "rai:dataReleaseMaintenancePlan", "rai:dataBiases",
              "rai:machineAnnotationTools"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("croissant"))


def test_run_card_croissant_validates_and_reads_the_provenance(run_dir):
    card(str(run_dir))
    doc = json.loads((run_dir / "croissant.json").read_text())
    assert doc["conformsTo"] == [CONFORMS_TO, RAI_CONFORMS_TO] and RAI_FIELDS <= set(doc)
    ds = mlc.Dataset(jsonld=str(run_dir / "croissant.json"))  # raises ValidationError on any error
    assert not ds.metadata.issues.errors and not ds.metadata.issues.warnings
    assert ds.metadata.data_collection_timeframe and ds.metadata.data_collection_type
    records = list(ds.records("provenance"))
    table = pq.read_table(run_dir / "provenance.parquet").to_pylist()
    assert [r["provenance/key"].decode() for r in records] == [r["key"] for r in table]
    assert {r["provenance/reason"].decode() for r in records} == {"", "duplicate_image", "clip_simple_below_complex"}


def test_full_release_croissant_reads_samples_and_images(run_dir, tmp_path):
    release(run_dir, tmp_path / "rel", ReleaseConfig(mode="full"))
    ds = mlc.Dataset(jsonld=str(tmp_path / "rel" / "croissant.json"))
    samples = list(ds.records("samples"))
    assert len(samples) == 6 and all(s["samples/prompt"] for s in samples)
    images = list(ds.records("images"))
    assert len(images) == 6 and images[0]["images/image"].size == (512, 512)


def test_a_broken_document_fails_validation(run_dir, tmp_path):
    card(str(run_dir))
    doc = json.loads((run_dir / "croissant.json").read_text())
    doc["recordSet"][-1]["field"][0]["source"]["fileObject"] = "no-such-file"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(mlc.ValidationError):
        mlc.Dataset(jsonld=str(bad))
