"""SUR-adapter model and files: identity at init, batch invariance, W0, save/load, width check, official import."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from surd.adapter.config import AdapterConfig  # noqa: E402
from surd.adapter.io import CONFIG_NAME, WEIGHTS_NAME, safetensors_bytes  # noqa: E402
from surd.adapter.model import (  # noqa: E402
    SURAdapter,
    distillation_loss,
    import_official_checkpoint,
    make_w0,
)
from tests.conftest import REPO  # noqa: E402

D, LLM = 32, 48


def small(**kw) -> SURAdapter:
    torch.manual_seed(0)
    return SURAdapter(AdapterConfig(text_dim=D, llm_dim=LLM, ff_dim=64, **kw))


def trained_like(adapter: SURAdapter) -> SURAdapter:
    """Give g non-zero weights, as training would, so the adapter branch shows in the output."""
    with torch.no_grad():
        adapter.g.weight.normal_(0, 0.2)
        adapter.g.bias.normal_(0, 0.2)
    return adapter


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("eta", [0.1, 0.5])
def test_fresh_adapter_is_exactly_scaled_identity(mode, eta):
    adapter = small(eta=eta).train(mode == "train")
    x = torch.randn(3, 77, D)
    out = adapter(x)
    assert torch.equal(out, (1 - eta) * x)


def test_batch_invariance_and_the_official_layout_bug():
    adapter = trained_like(small(dropout=0.0)).eval()
    x = torch.randn(4, 77, D)
    together = adapter(x)
    for i in range(4):
        assert torch.allclose(adapter(x[i:i + 1])[0], together[i], atol=1e-5)
    # Same layer without batch_first (the official construction) mixes samples of a batch.
    torch.manual_seed(0)
    official = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, 8, 64, dropout=0.0), 2, enable_nested_tensor=False)
    official.eval()
    assert not torch.allclose(official(x)[0], official(x[:1])[0], atol=1e-3)


def test_attention_runs_over_tokens():
    adapter = trained_like(small(dropout=0.0)).eval()
    x = torch.randn(1, 77, D)
    y = x.clone()
    y[0, 5] += 3.0  # change one token: the other tokens' outputs must change too (token mixing)
    assert not torch.allclose(adapter(x)[0, 0], adapter(y)[0, 0], atol=1e-4)


def test_w0_is_seeded_frozen_and_kaiming_scaled():
    a, b, c = small(w0_seed=3), small(w0_seed=3), small(w0_seed=4)
    assert torch.equal(a.w0_weight, b.w0_weight) and not torch.equal(a.w0_weight, c.w0_weight)
    assert "w0_weight" not in dict(a.named_parameters()) and "w0_weight" in a.state_dict()
    assert a.w0_weight.abs().max() <= 1 / math.sqrt(LLM) + 1e-6  # nn.Linear's kaiming_uniform(a=√5) bound
    w, _ = make_w0(LLM, D, 3)
    assert torch.equal(w, a.w0_weight)
    assert a.project_llm(torch.randn(2, LLM)).shape == (2, 1, D)


def test_save_load_round_trip(tmp_path):
    adapter = trained_like(small(eta=0.3, w0_seed=11)).eval()
    adapter.save_pretrained(tmp_path)
    assert (tmp_path / CONFIG_NAME).exists() and (tmp_path / WEIGHTS_NAME).exists()
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["eta"] == 0.3
    loaded = SURAdapter.from_pretrained(tmp_path, base_text_dim=D)
    assert loaded.config == adapter.config
    for k, v in adapter.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert torch.equal(loaded.w0_weight, adapter.w0_weight) and torch.equal(loaded.w0_bias, adapter.w0_bias)
    x = torch.randn(2, 77, D)
    assert torch.equal(loaded(x), adapter(x))


_SAVE = """
import sys, torch
from surd.adapter.config import AdapterConfig
from surd.adapter.model import SURAdapter
torch.manual_seed(0)
SURAdapter(AdapterConfig(text_dim=32, llm_dim=48, ff_dim=64)).save_pretrained(sys.argv[1])
"""


def test_adapter_files_are_byte_identical_across_processes(tmp_path):
    """safetensors' own writer orders the header's metadata by a per-process hash: two runs, two files. Ours
    does not (each process has its own hash seed, so this needs separate processes)."""
    for d in ("a", "b", "c"):
        subprocess.run([sys.executable, "-c", _SAVE, str(tmp_path / d)], cwd=REPO, check=True)
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        assert len({(tmp_path / d / name).read_bytes() for d in ("a", "b", "c")}) == 1, name


def test_safetensors_bytes_round_trip_every_dtype():
    from safetensors.torch import load  # the reference reader

    g = torch.Generator().manual_seed(0)
    tensors = {"w": torch.randn(3, 2, generator=g), "h": torch.randn(2, generator=g).half(),
               "b": torch.ones(2, dtype=torch.bfloat16), "i": torch.arange(4), "m": torch.tensor([True, False]),
               "e": torch.zeros(0), "s": torch.tensor(2.5, dtype=torch.float64)}
    data = safetensors_bytes(tensors, {"z": "1", "a": "2"})
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0 and data[8:8 + n].startswith(b'{"__metadata__":{"a":"2","z":"1"}')
    back = load(data)
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    with pytest.raises(ValueError, match="complex64"):
        safetensors_bytes({"c": torch.zeros(2, dtype=torch.complex64)}, {})


def test_load_refuses_mismatched_base_width(tmp_path):
    small().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="width 32.*width 1024"):
        SURAdapter.from_pretrained(tmp_path, base_text_dim=1024)


def test_config_validation_says_how_to_fix():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        AdapterConfig(text_dim=30, llm_dim=8)
    with pytest.raises(ValueError, match="eta"):
        AdapterConfig(text_dim=32, llm_dim=8, eta=1.5)


class OfficialLayout(nn.Module):
    """Module names and forward of the official ``Adapter`` (SUR_adapter.py), to build checkpoints in its layout."""

    def __init__(self, d: int, ff: int, eta: float):
        super().__init__()
        self.eta = eta
        self.encoder_layer = nn.TransformerEncoderLayer(d_model=d, nhead=8, dim_feedforward=ff)
        self.transformer_encoder = nn.TransformerEncoder(self.encoder_layer, num_layers=2, enable_nested_tensor=False)
        self.attention = nn.Module()
        for name in ("query_layer", "key_layer", "value_layer"):
            setattr(self.attention, name, nn.Linear(d, d))
        self.attention.output_layer = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        q_enc = self.transformer_encoder(x)  # [B, T, d] read as [seq=B, batch=T, d]
        a = self.attention
        scores = a.query_layer(q_enc) @ a.key_layer(x).transpose(-2, -1) / math.sqrt(x.shape[-1])
        weighted = scores.softmax(-1) @ x + x
        result = a.output_layer(weighted) + weighted
        return self.eta * self.fc(result) + (1 - self.eta) * x


def test_import_official_checkpoint(tmp_path):
    torch.manual_seed(1)
    official = OfficialLayout(D, 64, eta=0.1).eval()
    state = {"module." + k: v for k, v in official.state_dict().items()}  # as saved from a DDP wrapper
    path = tmp_path / "adapter_checkpoint500.pt"
    torch.save(state, path)
    adapter = import_official_checkpoint(path, llm_dim=LLM, eta=0.1, base_text_dim=D)
    assert adapter.config.n_layers == 2 and adapter.config.ff_dim == 64 and adapter.config.text_dim == D
    x = torch.randn(1, 77, D)
    with torch.no_grad():
        assert torch.allclose(adapter(x), official(x), atol=1e-5)  # identical at the official batch size of 1
        batch = torch.randn(3, 77, D)
        assert torch.allclose(adapter(batch)[1], adapter(batch[1:2])[0], atol=1e-5)
    adapter.save_pretrained(tmp_path / "converted")
    again = SURAdapter.from_pretrained(tmp_path / "converted")
    assert again.config.encoder_attention == "per_token" and torch.allclose(again(x), adapter(x))
    with pytest.raises(ValueError, match="width 32"):
        import_official_checkpoint(path, llm_dim=LLM, base_text_dim=768)
    from typer.testing import CliRunner

    from surd.cli import app

    res = CliRunner().invoke(app, ["import-adapter", str(path), "--out", str(tmp_path / "cli"), "--llm-dim", str(LLM)])
    assert res.exit_code == 0, res.output
    assert torch.allclose(SURAdapter.from_pretrained(tmp_path / "cli", base_text_dim=D)(x), adapter(x))
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="unknown keys"):
        import_official_checkpoint(tmp_path / "other.pt", llm_dim=LLM)


def test_distillation_loss_matches_official_definition():
    x, y = torch.randn(2, 1, D), torch.randn(2, 77, D)
    tau = 2.0
    ref = nn.functional.kl_div(nn.functional.log_softmax(x.expand_as(y) / tau, -1), nn.functional.softmax(y / tau, -1),
                               reduction="batchmean") * tau**2
    assert torch.allclose(distillation_loss(x, y, tau), ref)
    assert distillation_loss(y, y) < 1e-6


def test_the_package_hands_out_its_classes_lazily():
    import surd.adapter as pkg
    from surd.adapter import model

    assert pkg.SURAdapter is model.SURAdapter and pkg.import_official_checkpoint is model.import_official_checkpoint
    assert pkg.AdapterConfig.__name__ == "AdapterConfig"
    with pytest.raises(AttributeError):
        pkg.no_such_name  # noqa: B018
