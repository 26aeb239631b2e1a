"""freeze_router freezes the router of every MoE layer and nothing else, on every architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moemix.config import load_config
from moemix.errors import RoutingError
from moemix.routing import find_moe_layers
from moemix.testing import TINY_ARCHS, tiny_moe, tiny_run_config
from moemix.train import prepare_run
from moemix.train.freeze import freeze_routers


def router_parameter_names(model):
    """Names of the parameters that live inside a router module, found from the module tree by path."""
    router_ids = {id(layer.router) for layer in find_moe_layers(model)}
    routers = [name for name, module in model.named_modules() if id(module) in router_ids]
    return {name for name, _ in model.named_parameters() if any(name.startswith(f"{r}.") for r in routers)}


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_only_router_parameters_are_frozen_and_only_they_stay_unchanged(arch):
    model = tiny_moe(arch, seed=1)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    # Some are never trained by gradient (AFMoE's expert_bias, a load-balancing correction): not ours to freeze.
    trainable_before = {name for name, p in model.named_parameters() if p.requires_grad}

    frozen = freeze_routers(model)

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(frozen) == router_parameter_names(model)
    assert trainable_before - trainable == set(frozen) - (set(before) - trainable_before)
    assert len(frozen) >= len(find_moe_layers(model))
    # The experts' own gate projections (gate_proj, gate_up_proj, w1) are experts, not routers.
    assert not any("experts" in name or "gate_proj" in name or "gate_up" in name for name in frozen)
    assert any("experts" in name for name in trainable) or arch == "jetmoe"  # JetMoE: input_linear/output_linear

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    input_ids = torch.randint(3, 256, (2, 10), generator=torch.Generator().manual_seed(0))
    model.train()
    model(input_ids=input_ids, labels=input_ids).loss.backward()
    optimizer.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[name], before[name]) for name in frozen)
    assert all(after[name].grad is None for name in frozen)
    changed = [name for name in trainable if not torch.equal(after[name], before[name])]
    assert any("experts" in name or "linear" in name for name in changed)


def test_a_model_without_found_routers_is_refused_with_the_way_to_name_them():
    from torch import nn

    with pytest.raises(
        RoutingError,
        match=r"^mixing.freeze_router: Sequential has no Mixture-of-Experts layer.*"
        r"router_module",
    ):
        freeze_routers(nn.Sequential(nn.Linear(4, 4)))


def test_router_module_names_the_routers_to_freeze_in_a_model_moemix_cannot_read():
    from torch import nn

    class Switch(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(8, 4)
            self.num_experts, self.top_k = 4, 2

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.switch = Switch()
            self.experts_list = nn.ModuleList(nn.Linear(8, 8) for _ in range(4))
            self.gate_proj = nn.Linear(8, 8)  # a dense gated projection beside them: not a router

    model = nn.Module()
    model.layers = nn.ModuleList(Block() for _ in range(2))

    frozen = freeze_routers(model, router_module="layers.*.switch")

    assert frozen == [f"layers.{i}.switch.proj.{p}" for i in range(2) for p in ("weight", "bias")]
    assert {name for name, p in model.named_parameters() if not p.requires_grad} == set(frozen)


CONFIG = tiny_run_config(
    max_examples=60,
    arch="qwen2_moe",
    seed=2,
    mixing={"freeze_router": True, "source": "online"},
    training={"learning_rate": 0.01, "per_device_eval_batch_size": None},
)


def test_freeze_router_in_a_training_run_keeps_the_routers_as_they_were(tmp_path):
    run = prepare_run(load_config(text=CONFIG, overrides=[f"--output_dir={tmp_path / 'run'}"]))
    model = run.trainer.model
    frozen = router_parameter_names(model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    result = run.train()

    after = dict(model.named_parameters())
    assert frozen and all(torch.equal(after[name], before[name]) for name in frozen)
    assert all(not after[name].requires_grad for name in frozen)
    assert any(not torch.equal(after[name], before[name]) for name in after if "experts" in name)
    assert result.updates == 2 and np.isfinite(result.metrics["train_loss"])
