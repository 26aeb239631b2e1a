"""A frozen-prefix cache gives the plain forward's probe counts and dev losses while running only the trained layers."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

from moemix.models.lora import freeze_layers
from moemix.models.prefix import FrozenPrefix, prefix_of
from moemix.testing import random_dev_batches, tiny_moe
from moemix.train.callback import probe_loads
from moemix.train.evaluate import dev_loss, dev_losses, token_losses

VOCAB = 256

# Rotary (mixtral), sliding-window masks longer than the window (gpt_oss: window 16, rows of 24), a dense first
# layer and MLA (deepseek_v3), linear-attention hybrids (qwen3_next), hyper-connections (hy_v4), router-only hooks
# (jetmoe).
ARCHS = ["mixtral", "gpt_oss", "deepseek_v3", "qwen3_next", "hy_v4", "jetmoe"]


dev_batches = partial(random_dev_batches, length=24, shortest=5, vocab_size=VOCAB)
"""Right-padded batches of different lengths; the first 3 tokens of a row are a prompt without labels."""


def plain_dev_loss(model, batches) -> float:
    """The dev loss as a whole forward with full logits gives it (the definition)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            losses, valid = token_losses(logits, batch["labels"])
            total += float(losses.sum())
            count += int(valid.sum())
    model.train()
    return total / count


def trained_last(arch: str, layers: int = 3, trainable: int = 1):
    model = tiny_moe(arch, seed=2, **({} if arch in ("qwen3_next", "hy_v4") else {"num_hidden_layers": layers}))
    return freeze_layers(model, trainable)


class LayerCalls:
    """Counts the attention forwards of each decoder layer: the work a layer does (a replayed layer is still
    called, but returns the recorded output without running its attention)."""

    def __init__(self, layers: nn.ModuleList):
        self.calls = [0] * len(layers)
        self.handles = [layer.self_attn.register_forward_pre_hook(self._hook(i)) for i, layer in enumerate(layers)]

    def _hook(self, i):
        def hook(module, args):
            self.calls[i] += 1

        return hook

    def reset(self) -> list[int]:
        calls, self.calls = self.calls, [0] * len(self.calls)
        return calls


@pytest.mark.parametrize("arch", ARCHS)
def test_replayed_probe_counts_and_dev_losses_equal_the_plain_forward(arch):
    model = trained_last(arch)
    probe = [dev_batches(seed) for seed in range(3)]
    plain_counts = probe_loads(model, probe, "last")
    plain_losses = [plain_dev_loss(model, batches) for batches in probe]
    prefix = FrozenPrefix(model)
    cached = [prefix.batches(batches) for batches in probe]
    assert prefix.start == len(model.model.layers) - 1

    for _ in range(2):  # the first pass records, the second replays
        assert np.array_equal(probe_loads(model, cached, "last"), plain_counts)
        losses = [dev_loss(model, batches) for batches in cached]
        assert losses == pytest.approx(plain_losses, rel=1e-5, abs=1e-6)
    assert prefix.active and prefix.nbytes > 0


def test_replay_runs_only_the_trained_layers():
    model = trained_last("mixtral", layers=4, trainable=2)
    probe = [dev_batches(seed) for seed in range(2)]
    prefix = FrozenPrefix(model)
    cached = [prefix.batches(batches) for batches in probe]
    calls = LayerCalls(model.model.layers)
    head_calls = []
    model.lm_head.register_forward_hook(lambda module, args, output: head_calls.append(args[0].shape))

    probe_loads(model, cached)  # one merged forward that records, and one replay of it that checks the record
    assert calls.reset() == [1, 1, 2, 2]
    probe_loads(model, cached)
    assert calls.reset() == [0, 0, 1, 1]
    dev_loss(model, cached[0])  # the same rows, already recorded; dev loss's first batch is checked once
    assert calls.reset() == [1, 1, 3, 3]
    dev_loss(model, cached[0])
    assert calls.reset() == [0, 0, 2, 2]
    # Logits only where a label counts: the prompt positions of every row are left out.
    assert all(shape[1] < 24 for shape in head_calls)


def test_rows_recorded_in_one_batching_are_replayed_in_another():
    model = trained_last("gpt_oss", layers=3, trainable=1)
    rows = dev_batches(8, count=1, rows=6)[0]
    halves = [{k: v[:3] for k, v in rows.items()}, {k: v[3:] for k, v in rows.items()}]
    prefix = FrozenPrefix(model)
    calls = LayerCalls(model.model.layers)

    dev_loss(model, prefix.batches(halves))  # records the six rows, padded as two batches of three
    calls.reset()
    replayed = dev_loss(model, prefix.batches([rows]))  # one batch of six, padded to its own longest row

    assert calls.reset() == [0, 0, 1]
    assert replayed == pytest.approx(plain_dev_loss(model, [rows]), rel=1e-5)


def test_left_padded_batches_run_whole():
    model = trained_last("mixtral")
    batch = dev_batches(9, count=1)[0]
    flipped = {key: value.flip(1) for key, value in batch.items()}  # padding first: hidden states depend on it
    prefix = FrozenPrefix(model)

    dev_loss(model, prefix.batches([flipped]))

    assert prefix.nbytes == 0


def test_a_changed_frozen_weight_empties_the_cache():
    model = trained_last("mixtral")
    batches = dev_batches(0)
    prefix = FrozenPrefix(model)
    cached = prefix.batches(batches)
    dev_loss(model, cached)
    assert prefix.nbytes > 0

    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight.mul_(1.5)  # as loading a checkpoint into it would

    assert dev_loss(model, cached) == pytest.approx(plain_dev_loss(model, batches), rel=1e-5)


def test_the_memory_bound_runs_batches_past_it_whole():
    model = trained_last("qwen3_moe")
    batches = dev_batches(1, count=3)
    prefix = FrozenPrefix(model, max_bytes=1)
    cached = prefix.batches(batches)

    assert dev_loss(model, cached) == pytest.approx(plain_dev_loss(model, batches), rel=1e-5)
    assert prefix.nbytes == 0


def test_no_frozen_prefix_when_every_layer_trains():
    model = tiny_moe("mixtral", num_hidden_layers=3)
    prefix = FrozenPrefix(model)
    assert prefix.start is None and not prefix.active
    batches = dev_batches(2)
    assert dev_loss(model, prefix.batches(batches)) == pytest.approx(plain_dev_loss(model, batches), rel=1e-5)


def test_no_frozen_prefix_when_the_embeddings_train_too():
    model = trained_last("mixtral")
    model.model.embed_tokens.weight.requires_grad_(True)
    assert FrozenPrefix(model).start is None


class DenselyConnected(nn.Module):
    """A model whose layers also read every earlier layer's output (kept outside their return values): replaying
    only the last frozen layer's output would be wrong for it."""

    def __init__(self):
        super().__init__()
        self.config = type("Config", (), {"num_hidden_layers": 3})()
        self.embed = nn.Embedding(VOCAB, 16)
        self.layers = nn.ModuleList(nn.Linear(16, 16) for _ in range(3))
        self.head = nn.Linear(16, VOCAB)

    def forward(self, input_ids, attention_mask=None, labels=None):
        hidden = self.embed(input_ids)
        outputs = []
        for layer in self.layers:
            hidden = torch.tanh(layer(hidden)) + sum(outputs, torch.zeros_like(hidden))
            outputs.append(hidden)
        return CausalLMOutput(logits=self.head(hidden))


def test_a_replay_that_differs_from_the_plain_forward_turns_the_cache_off(caplog):
    model = DenselyConnected()
    torch.manual_seed(0)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.layers[2].weight.requires_grad_(True)
    prefix = FrozenPrefix(model)
    assert prefix.start == 2
    batches = dev_batches(3)

    with caplog.at_level(logging.WARNING):
        first = dev_loss(model, prefix.batches(batches))

    assert "did not reproduce the plain forward" in caplog.text
    assert not prefix.active and prefix.nbytes == 0
    assert first == pytest.approx(plain_dev_loss(model, batches), rel=1e-5)
    assert dev_loss(model, prefix.batches(batches)) == pytest.approx(first, rel=1e-6)


def test_dev_losses_of_prefixed_batches_keep_the_cache_and_plain_lists_do_not():
    model = trained_last("olmoe")
    prefix = FrozenPrefix(model)
    by_name = {"a": prefix.batches(dev_batches(4)), "b": prefix.batches(dev_batches(5))}
    assert prefix_of(by_name["a"]) is prefix and prefix_of(dev_batches(4)) is None

    losses = dev_losses(model, by_name)

    assert losses == pytest.approx({n: plain_dev_loss(model, b) for n, b in by_name.items()}, rel=1e-5)
    assert prefix.nbytes > 0


def test_another_model_with_the_same_batches_runs_plainly():
    model, other = trained_last("mixtral"), trained_last("mixtral")
    with torch.no_grad():
        other.lm_head.weight.mul_(2.0)
    prefix = FrozenPrefix(model)
    cached = prefix.batches(dev_batches(6))
    dev_loss(model, cached)

    assert dev_loss(other, cached) == pytest.approx(plain_dev_loss(other, dev_batches(6)), rel=1e-5)
