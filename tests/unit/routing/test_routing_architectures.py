"""Every MoE architecture of the installed transformers: the counts are what each layer's experts received.

The reference counts here do not use moemix's hooks: they read the arguments each layer's experts were called
with (the indices, JetMoE's grouped rows, Llama 4's score-scaled copies of every token) and count them token by
token, skipping padding.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from moemix.routing import capture_layers, expert_counts, find_moe_layers
from moemix.routing.locate import INDEX_ARGUMENTS
from moemix.testing import TINY_ARCHS, padded_batch, tiny_moe

# Layer 0 dense, layer 1 MoE, in the tiny configs of these (DeepSeek-style first_k_dense_replace or an explicit
# per-layer pattern); LongCat-Flash has one decoder layer holding one MoE block.
DENSE_FIRST = {
    "afmoe", "axk1", "axk2", "bailing_hybrid", "beam", "deepseek_v2", "deepseek_v3", "deepseek_v32", "dots1",
    "dots3_note_text", "exaone_moe", "glm4_moe", "glm4_moe_lite", "glm_moe_dsa", "hy_v3", "hy_v4", "jamba",
    "kimi_linear", "laguna", "lfm2_moe", "mimo_v2_flash", "nemotron_h",
}  # fmt: skip
ONE_MOE_LAYER = DENSE_FIRST | {"longcat_flash"}


class ReceivedByExperts:
    """Records, for one MoE layer, which expert received which token, from the experts' own call arguments."""

    def __init__(self, layer, attention_mask):
        self.layer, self.tokens, self.calls = layer, attention_mask.numel(), []
        self.real = attention_mask.reshape(-1).tolist()
        block = layer.block
        if "Llama4" in type(block).__name__:
            # Every expert runs every token, scaled by its score: zero unless chosen.
            self.handles = [block.experts.register_forward_pre_hook(self._scaled_copies)]
        elif hasattr(block, "input_linear"):
            # JetMoE: the grouped linear receives the chosen tokens' rows, grouped by expert, and the group sizes.
            self.handles = [
                block.register_forward_pre_hook(self._block_input),
                block.input_linear.register_forward_pre_hook(self._grouped_rows),
            ]
        else:
            self.handles = [block.experts.register_forward_pre_hook(self._indices, with_kwargs=True)]

    def remove(self):
        for handle in self.handles:
            handle.remove()

    def _indices(self, module, args, kwargs):
        bound = inspect.signature(module.forward).bind(*args, **kwargs).arguments
        (name,) = [n for n in INDEX_ARGUMENTS if n in bound]
        self.calls.append([[int(e) for e in row] for row in bound[name].reshape(self.tokens, -1)])

    def _scaled_copies(self, module, args):
        copies = args[0].reshape(self.layer.num_experts, self.tokens, -1)
        experts = range(self.layer.num_experts)
        self.calls.append([[e for e in experts if copies[e, t].any()] for t in range(self.tokens)])

    def _block_input(self, module, args):
        self.block_input = args[0].reshape(self.tokens, -1)

    def _grouped_rows(self, module, args):
        rows, sizes = args
        chosen = [[] for _ in range(self.tokens)]
        start = 0
        for expert, size in enumerate(sizes):
            for row in rows[start : start + size]:
                tokens = [t for t in range(self.tokens) if torch.equal(self.block_input[t], row)]
                # Left padding: a run of pad tokens attending only to pads has identical rows; none counts.
                assert len(tokens) == 1 or not any(self.real[t] for t in tokens)
                chosen[tokens[0]].append(expert)
            start += size
        self.calls.append(chosen)

    def counts(self, attention_mask):
        assert len(self.calls) == 1, f"{self.layer.name} experts ran {len(self.calls)} times"
        batch, seq = attention_mask.shape
        counts = torch.zeros(batch, self.layer.num_experts, dtype=torch.long)
        for b in range(batch):
            for s in range(seq):
                if attention_mask[b, s]:
                    for expert in self.calls[0][b * seq + s]:
                        if 0 <= expert < self.layer.num_experts:  # LongCat's zero experts are no experts
                            counts[b, expert] += 1
        return counts


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_counts_equal_what_each_layers_experts_received(arch):
    model = tiny_moe(arch, seed=3)
    input_ids, attention_mask = padded_batch(seed=1)
    layers = find_moe_layers(model)
    recorders = [ReceivedByExperts(layer, attention_mask) for layer in layers]
    try:
        with torch.no_grad():
            model.eval()(input_ids=input_ids, attention_mask=attention_mask)
    finally:
        for recorder in recorders:
            recorder.remove()
    received = [recorder.counts(attention_mask) for recorder in recorders]

    counts = expert_counts(model, input_ids, attention_mask, layer="all")

    expected_layers = [1] if arch in DENSE_FIRST else [0] if arch in ONE_MOE_LAYER else [0, 1]
    assert [layer.layer_index for layer in layers] == expected_layers
    assert torch.equal(counts, torch.cat(received, dim=1))
    assert torch.equal(expert_counts(model, input_ids, attention_mask), received[-1])  # "last", the paper's
    # Not vacuous: tokens went to more than one expert.
    assert (received[-1].sum(dim=0) > 0).sum() >= 2


@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_gradient_checkpointing_gives_the_same_counts(arch, use_reentrant):
    model = tiny_moe(arch)
    if not model.supports_gradient_checkpointing:
        pytest.skip(f"{type(model).__name__} does not support gradient checkpointing")
    model.config.use_cache = False
    input_ids, attention_mask = padded_batch()
    layers = find_moe_layers(model)
    routed = []  # every call of a router, including the recomputation during backward
    for layer in layers:
        layer.router.register_forward_hook(lambda *_: routed.append(1))

    def train_step():
        routed.clear()
        model.train()
        # PhiMoE samples its routing in train mode; the same seed must give the same choice with or without.
        torch.manual_seed(0)
        with capture_layers(model, "all") as captures:
            model(input_ids=input_ids, attention_mask=attention_mask, labels=input_ids).loss.backward()
        model.zero_grad()
        return [capture.indices for capture in captures], len(routed)

    plain, plain_calls = train_step()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": use_reentrant})
    checkpointed, checkpointed_calls = train_step()

    assert model.is_activation_checkpointing
    assert plain_calls == len(layers) and checkpointed_calls == 2 * len(layers)  # the recomputation did happen
    assert [len(indices) for indices in plain] == [len(indices) for indices in checkpointed] == [1] * len(layers)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(plain, checkpointed))
