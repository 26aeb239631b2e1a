"""LoRA through peft: adapters train, routers train in full beside them (or stay frozen), the adapter is saved
alone and loads back onto its base to the same model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from moemix.cli import main
from moemix.config import load_config
from moemix.models.lora import is_adapter, load_adapter
from moemix.routing import find_moe_layers
from moemix.testing import save_tiny_model, tiny_run_config
from moemix.train.run import prepare_run


def config_text(out, base, freeze: bool) -> str:
    return tiny_run_config(
        ("math", "code"),
        24,
        output_dir=str(out),
        max_length=160,
        model={
            "name_or_path": str(base),
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        },
        mixing={"policy": None, "freeze_router": freeze},
        training={"per_device_eval_batch_size": 4, "learning_rate": 0.01, "logging_strategy": None},
    )


@pytest.fixture
def base(tmp_path):
    return save_tiny_model(tmp_path / "base", "mixtral", ("math", "code"), n=40, vocab_size=300)


def _config(tmp_path, base, freeze: bool):
    path = tmp_path / f"lora_{freeze}.yaml"
    path.write_text(config_text(tmp_path / f"run_{freeze}", base, freeze))
    return path


def _routers(model) -> list[torch.Tensor]:
    return [layer.router.weight.detach().clone() for layer in find_moe_layers(model)]


@pytest.mark.parametrize("freeze", [False, True])
def test_lora_run_saves_an_adapter_that_loads_back(tmp_path, base, freeze):
    config = load_config(_config(tmp_path, base, freeze))
    prepared = prepare_run(config)
    model = prepared.trainer.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
    assert any("modules_to_save" in n for n in trainable) != freeze  # routers train unless frozen
    before = _routers(model.get_base_model())
    result = prepared.train()
    assert result.updates == 2  # the mixture was learnt from the routing of the peft-wrapped model

    folder = result.output_dir / "model"
    assert is_adapter(folder) and not (folder / "model.safetensors").exists()
    saved = load_file(folder / "adapter_model.safetensors")
    assert any("lora_A" in k for k in saved)
    # The routers are saved with the adapter either way (trained, or as they were when frozen).
    assert any("mlp.gate" in k for k in saved)

    loaded = load_adapter(folder)
    ids = torch.randint(3, 100, (2, 12))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-5)
    after = _routers(loaded)
    changed = any(not torch.equal(a, b) for a, b in zip(before, after))
    assert changed != freeze

    # The base model on disk is untouched: the adapter's base still has the original routers.
    plain = load_adapter(folder).get_base_model()
    assert plain.config._name_or_path == str(base)


def test_eval_reads_a_lora_run(tmp_path, base, capsys):
    cfg = _config(tmp_path, base, False)
    assert main(["train", str(cfg)]) == 0
    run = tmp_path / "run_False"
    assert main(["eval", str(run), "--tasks", "devloss", "--config", str(cfg)]) == 0
    results = json.loads((run / "eval.json").read_text())
    assert results["kind"] == "run" and set(results["tasks"]["devloss"]["loss"]) == {"math", "code"}


def test_bad_lora_config(tmp_path, base, capsys):
    cfg = _config(tmp_path, base, False)
    assert main(["train", str(cfg), "--model.lora.r=0"]) == 2
    assert "model.lora.r: must be >= 1" in capsys.readouterr().err
    assert main(["train", str(cfg), "--model.lora.target_modules=[no_such_module]"]) == 2
    assert "model.lora.target_modules" in capsys.readouterr().err
