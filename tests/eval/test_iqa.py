"""The quality and VQA models: the libraries' own code (pyiqa BRISQUE and MUSIQ, torchmetrics CLIP-IQA, transformers
BLIP VQA) on tiny stand-ins, loaded from local paths the way real weights are, and unsafe weight files refused."""

from __future__ import annotations

import pickle

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pyiqa")
pytest.importorskip("torchmetrics")

from surd.eval.iqa import check_tensor_file, load_brisque, load_clip_iqa, load_musiq, tiny_clip_iqa_model  # noqa: E402
from surd.models import ModelLoadError  # noqa: E402


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(3, 3, 64, 64, generator=gen)


def test_tiny_metrics_run_the_library_code(images):
    import pyiqa.archs.brisque_arch as brisque_arch
    import pyiqa.archs.musiq_arch as musiq_arch
    from torchmetrics.multimodal import CLIPImageQualityAssessment

    b, m, c = load_brisque("tiny"), load_musiq("tiny"), load_clip_iqa("tiny")
    assert isinstance(b.net.net, brisque_arch.BRISQUE) and b.lower_better
    assert isinstance(m.net.net, musiq_arch.MUSIQ) and not m.lower_better
    assert isinstance(c.net, CLIPImageQualityAssessment)
    for model in (b, m, c):
        scores = model.score(images)
        assert len(scores) == 3 and all(isinstance(v, float) for v in scores)
        assert model.score(images[:1])[0] == pytest.approx(scores[0], rel=1e-4, abs=1e-9)  # per image, batch-free
    assert 0.0 <= min(c.score(images)) and max(c.score(images)) <= 1.0  # a probability (good vs bad photo)


def test_brisque_and_musiq_from_local_weight_files(images, tmp_path):
    tiny = load_musiq("tiny")
    torch.save(tiny.net.net.state_dict(), tmp_path / "musiq.pth")
    # pyiqa builds the full-size MUSIQ for a weight file: a file of another shape is refused by its loader.
    with pytest.raises(RuntimeError, match="size mismatch|Missing key|Unexpected key"):
        load_musiq(str(tmp_path / "musiq.pth"))
    gen = torch.Generator().manual_seed(1)
    svm = (torch.randn(8, generator=gen), torch.rand(8, 36, generator=gen))
    torch.save(svm, tmp_path / "svm.pt")
    b = load_brisque(str(tmp_path / "svm.pt"))
    assert torch.equal(b.net.net.sv_coef, svm[0]) and len(b.score(images)) == 3


def test_clip_iqa_from_a_local_transformers_folder(images, tmp_path):
    model, processor = tiny_clip_iqa_model()
    model.save_pretrained(tmp_path / "clip")
    processor.save_pretrained(tmp_path / "clip")
    assert load_clip_iqa(str(tmp_path / "clip")).score(images) == pytest.approx(load_clip_iqa("tiny").score(images))
    with pytest.raises(ModelLoadError, match="transformers CLIP"):
        load_clip_iqa(str(tmp_path / "missing"))


class Evil:
    def __reduce__(self):
        return (print, ("this would run",))


def test_weight_files_with_more_than_tensors_are_refused(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"sv": Evil()}, f, protocol=2)
    with pytest.raises(ModelLoadError, match="more than tensors"):
        check_tensor_file(str(tmp_path / "evil.pt"))
    with pytest.raises(ModelLoadError, match="more than tensors"):
        load_brisque(str(tmp_path / "evil.pt"))
    with pytest.raises(FileNotFoundError):
        check_tensor_file(str(tmp_path / "nope.pt"))


def test_vqa_answers_a_batch_and_loads_from_a_folder(tmp_path):
    from PIL import Image

    from surd.models.vqa import load_vqa

    vqa = load_vqa("tiny", device="cpu")
    assert type(vqa.model).__name__ == "BlipForQuestionAnswering"
    imgs = [Image.new("RGB", (40, 40), c) for c in ("red", "blue")]
    answers = vqa.answer(imgs, ["What color is the car?", "How many pies are there?"])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    vqa.model.save_pretrained(tmp_path / "vqa")
    vqa.processor.save_pretrained(tmp_path / "vqa")
    again = load_vqa(str(tmp_path / "vqa"), device="cpu", dtype="fp32")
    assert again.answer(imgs, ["What color is the car?", "How many pies are there?"]) == answers
    with pytest.raises(ModelLoadError, match="BLIP VQA"):
        load_vqa(str(tmp_path), device="cpu")
