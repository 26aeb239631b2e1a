"""Turn a dense Llama-family causal LM into a Mixture-of-Experts model ("upcycling").

Two ways to make experts out of a dense feed-forward layer (SwiGLU: ``down(silu(gate x) * up x)``):

- ``copy`` (sparse upcycling, Komatsuzaki et al., ICLR 2023, arXiv 2212.05055): every expert is a copy of the
  dense MLP. The router renormalises its top-k weights to sum to one, so the layer's output is
  ``sum_k w_k MLP(x) = MLP(x)`` whatever the router says: the MoE computes the dense model's function at the
  start, and the router is free to start random (so that datasets already route differently at step 0).
- ``split`` (LLaMA-MoE, Zhu et al., EMNLP 2024, arXiv 2406.16554): the MLP's intermediate neurons are
  partitioned at random (seeded) into ``E`` groups, one expert each; a group's ``down`` columns are scaled by
  ``k``. With the top-k weights near ``1/k`` the layer then sums the chosen groups' neurons, and with ``k = E``
  and a uniform router it is exactly the dense MLP. Groups are padded with zero neurons (``silu(0) * 0 = 0``
  adds nothing) up to a common width that is a multiple of 8, because transformers' grouped-matmul experts need
  rows of a multiple of 16 bytes.

Target architecture. With every layer MoE (``layers="all"``) the result is a Mixtral model (``MixtralConfig``:
Llama's attention, RMSNorm and RoPE, an MoE block per layer). Mixtral has one expert count for all layers and
no dense layer, so ``layers="last:L"`` (the last L layers MoE, the rest kept dense) builds a Qwen2-MoE model
instead: the one transformers architecture that keeps Llama's attention exactly (``qkv_bias=False``) and names
its dense layers (``mlp_only_layers``). Its shared expert is given width 0 (it adds nothing) and its router
renormalises the top-k weights (``norm_topk_prob=True``), as Mixtral's does; the copy-mode equality holds for
both.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from moemix.config import UPCYCLE_MODES, UpcycleConfig, check_section
from moemix.errors import ConfigError
from moemix.hub import offline_unless_reachable
from moemix.models.gguf import gguf_kwargs

MODES: tuple[str, ...] = UPCYCLE_MODES
"""Ways to build experts from a dense MLP."""

DENSE_TYPES: tuple[str, ...] = ("llama", "mistral")
"""``model_type`` of the dense models that can be upcycled (Llama attention, SwiGLU MLP, RMSNorm, RoPE)."""

RECORD_FILE = "upcycle.json"
"""Written last into an upcycled model's folder: how it was built (and that the folder is complete)."""


UpcycleRecipe = UpcycleConfig
"""How to turn a dense model into an MoE: the config's ``model.upcycle`` section (experts, top_k, layers, mode,
seed, router_std), defined and checked in :class:`moemix.config.UpcycleConfig`."""


def moe_layer_indices(layers: str, num_layers: int) -> list[int]:
    """The decoder layers that become MoE.

    Args:
        layers: ``"all"`` or ``"last:L"`` with ``1 <= L <= num_layers``.
        num_layers: The dense model's decoder layers.

    Returns:
        Sorted layer indices.

    Raises:
        ConfigError: If ``layers`` is neither form or L is out of range.
    """
    if layers == "all":
        return list(range(num_layers))
    head, _, count = layers.partition(":")
    if head == "last" and count.isdigit() and 1 <= int(count) <= num_layers:
        return list(range(num_layers - int(count), num_layers))
    raise ConfigError(f"upcycle layers: expected 'all' or 'last:L' with 1 <= L <= {num_layers}, got {layers!r}")


def check_recipe(recipe: UpcycleRecipe, intermediate_size: int | None = None) -> None:
    """Check the recipe: the config's rules of ``model.upcycle``, and split's one expert per neuron at most.

    Args:
        recipe: The recipe.
        intermediate_size: The dense MLP's width, when known.

    Raises:
        ConfigError: Naming the field and the rule it breaks.
    """
    check_section(recipe, lambda path: f"upcycle {path}")
    if recipe.mode == "split" and intermediate_size is not None and recipe.experts > intermediate_size:
        raise ConfigError(
            f"upcycle experts: split mode needs at most one expert per neuron ({intermediate_size}), "
            f"got {recipe.experts}"
        )


def _check_dense(config) -> None:
    kind = getattr(config, "model_type", None)
    if kind not in DENSE_TYPES:
        raise ConfigError(
            f"upcycle: model_type {kind!r} is not supported; dense {' or '.join(DENSE_TYPES)} models only"
        )
    for name in ("attention_bias", "mlp_bias"):
        if getattr(config, name, False):
            raise ConfigError(f"upcycle: {name}=True is not supported (the MoE architectures have no such bias)")


def moe_config(dense_config, recipe: UpcycleRecipe):
    """The config of the MoE model: Mixtral when every layer is MoE, Qwen2-MoE with dense layers otherwise.

    Args:
        dense_config: The dense model's ``LlamaConfig`` or ``MistralConfig``.
        recipe: The upcycling recipe.

    Returns:
        A transformers config for ``AutoModelForCausalLM.from_config``.
    """
    _check_dense(dense_config)
    check_recipe(recipe, dense_config.intermediate_size)
    n = dense_config.num_hidden_layers
    moe = moe_layer_indices(recipe.layers, n)
    width = dense_config.intermediate_size
    expert_width = width if recipe.mode == "copy" else split_width(width, recipe.experts)
    sliding = getattr(dense_config, "sliding_window", None)
    common = {
        "vocab_size": dense_config.vocab_size,
        "hidden_size": dense_config.hidden_size,
        "num_hidden_layers": n,
        "num_attention_heads": dense_config.num_attention_heads,
        "num_key_value_heads": dense_config.num_key_value_heads,
        "head_dim": getattr(dense_config, "head_dim", None)
        or dense_config.hidden_size // dense_config.num_attention_heads,
        "hidden_act": dense_config.hidden_act,
        "max_position_embeddings": dense_config.max_position_embeddings,
        "initializer_range": dense_config.initializer_range,
        "rms_norm_eps": dense_config.rms_norm_eps,
        "rope_parameters": dict(dense_config.rope_parameters),
        "attention_dropout": dense_config.attention_dropout,
        "tie_word_embeddings": dense_config.tie_word_embeddings,
        "pad_token_id": dense_config.pad_token_id,
        "bos_token_id": dense_config.bos_token_id,
        "eos_token_id": dense_config.eos_token_id,
        "num_experts_per_tok": recipe.top_k,
        "output_router_logits": False,
    }
    if len(moe) == n:
        return AutoConfig.for_model(
            "mixtral",
            **common,
            intermediate_size=expert_width,
            num_local_experts=recipe.experts,
            router_jitter_noise=0.0,
            sliding_window=sliding,
        )
    return AutoConfig.for_model(
        "qwen2_moe",
        **common,
        intermediate_size=width,
        moe_intermediate_size=expert_width,
        num_experts=recipe.experts,
        mlp_only_layers=[i for i in range(n) if i not in moe],
        decoder_sparse_step=1,
        norm_topk_prob=True,
        shared_expert_intermediate_size=0,
        qkv_bias=False,
        use_sliding_window=sliding is not None,
        sliding_window=sliding,
        layer_types=["sliding_attention" if sliding is not None else "full_attention"] * n,
    )


def split_width(width: int, experts: int) -> int:
    """Width of a split-mode expert: its share of ``width`` neurons, rounded up to a multiple of 8."""
    share = -(-width // experts)
    return -(-share // 8) * 8


def _expert_weights(gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor, recipe: UpcycleRecipe, generator):
    """``gate_up_proj [E, 2W, H]`` and ``down_proj [E, H, W]`` from a dense MLP's ``[I, H], [I, H], [H, I]``."""
    e = recipe.experts
    if recipe.mode == "copy":
        gate_up = torch.cat([gate, up], dim=0).unsqueeze(0).expand(e, -1, -1).clone()
        return gate_up, down.unsqueeze(0).expand(e, -1, -1).clone()
    width = gate.shape[0]
    expert_width = split_width(width, e)
    order = torch.randperm(width, generator=generator)
    hidden = gate.shape[1]
    gate_up = gate.new_zeros(e, 2 * expert_width, hidden)
    downs = down.new_zeros(e, down.shape[0], expert_width)
    for i, group in enumerate(torch.tensor_split(order, e)):
        m = len(group)
        gate_up[i, :m] = gate[group]
        gate_up[i, expert_width : expert_width + m] = up[group]
        # Scaled by k: with top-k weights near 1/k the layer sums the chosen groups, the dense MLP when k = E.
        downs[i, :, :m] = down[:, group] * recipe.top_k
    return gate_up, downs


@torch.no_grad()
def upcycle(dense: PreTrainedModel, recipe: UpcycleRecipe) -> PreTrainedModel:
    """Build the MoE model from a dense one (the dense model is left unchanged).

    Args:
        dense: A dense Llama or Mistral causal LM.
        recipe: Experts, top-k, which layers, copy or split.

    Returns:
        A ``MixtralForCausalLM`` (all layers MoE) or ``Qwen2MoeForCausalLM`` (some layers dense), in the dense
        model's dtype, in eval mode.

    Raises:
        ConfigError: If the model type or the recipe is not supported.
    """
    config = moe_config(dense.config, recipe)
    moe_layers = set(moe_layer_indices(recipe.layers, dense.config.num_hidden_layers))
    dtype = next(dense.parameters()).dtype
    # The generator is seeded per build, so the same recipe gives the same weights; the global RNG is untouched.
    generator = torch.Generator().manual_seed(recipe.seed)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # Qwen2-MoE's width-0 shared expert makes torch warn that initialising an empty tensor does nothing.
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        torch.manual_seed(recipe.seed)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    source = dict(dense.named_parameters(remove_duplicate=False))
    target = dict(model.named_parameters(remove_duplicate=False))
    std = dense.config.initializer_range if recipe.router_std is None else recipe.router_std
    filled: set[str] = set()

    def put(name: str, value: torch.Tensor) -> None:
        param = target[name]
        if param.shape != value.shape:
            raise AssertionError(f"upcycle: {name} is {tuple(param.shape)} in the MoE, {tuple(value.shape)} given")
        param.copy_(value)
        filled.add(name)

    for name, value in source.items():
        parts = name.split(".")
        if "mlp" in parts and int(parts[parts.index("layers") + 1]) in moe_layers:
            continue
        put(name, value)
    for i in sorted(moe_layers):
        prefix = f"model.layers.{i}.mlp"
        gate_up, down = _expert_weights(
            source[f"{prefix}.gate_proj.weight"],
            source[f"{prefix}.up_proj.weight"],
            source[f"{prefix}.down_proj.weight"],
            recipe,
            generator,
        )
        put(f"{prefix}.experts.gate_up_proj", gate_up)
        put(f"{prefix}.experts.down_proj", down)
        router = torch.randn(target[f"{prefix}.gate.weight"].shape, generator=generator, dtype=torch.float32) * std
        put(f"{prefix}.gate.weight", router.to(dtype))
        for extra in (f"{prefix}.shared_expert_gate.weight",):  # Qwen2-MoE's (width-0) shared expert: no effect
            if extra in target:
                put(extra, torch.zeros_like(target[extra]))
        for extra in [k for k in target if k.startswith(f"{prefix}.shared_expert.")]:
            put(extra, torch.zeros_like(target[extra]))
    missing = sorted(set(target) - filled)
    if missing:
        raise AssertionError(f"upcycle: MoE parameters left unset: {', '.join(missing[:5])}")
    if dense.generation_config is not None:
        model.generation_config = dense.generation_config
    return model.eval()


def load_dense(path: str | os.PathLike[str], gguf_file: str | None = None) -> PreTrainedModel:
    """Load a dense causal LM from a local folder (safetensors, or a GGUF file in it, dequantised).

    Raises:
        ConfigError: If nothing loadable is there.
    """
    kwargs = gguf_kwargs(gguf_file)
    where = f"{path}/{gguf_file}" if gguf_file else str(path)
    with offline_unless_reachable() as unreachable:
        try:
            return AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
        except (OSError, ValueError) as err:
            reason = (
                f"not in the local Hugging Face cache, and {unreachable}" if unreachable else str(err).splitlines()[0]
            )
            raise ConfigError(f"upcycle model: cannot load a dense model from {where!r} ({reason})") from None


def upcycle_pretrained(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    recipe: UpcycleRecipe,
    gguf_file: str | None = None,
) -> Path:
    """Load a dense model, upcycle it, and save the MoE (safetensors) and the tokenizer into ``out_dir``.

    The folder is written beside ``out_dir`` and renamed into place, so it appears whole or not at all; its
    ``upcycle.json`` records the source and the recipe.

    Args:
        path: The dense model's folder.
        out_dir: Where the MoE goes; must not exist yet (or be empty).
        recipe: The upcycling recipe.
        gguf_file: A GGUF file inside ``path`` to load instead of safetensors.

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: If ``out_dir`` is a non-empty folder, or the model or recipe is not supported.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"upcycle out: {out} already exists and is not an empty folder; choose another --out")
    check_recipe(recipe)
    dense = load_dense(path, gguf_file)
    moe = upcycle(dense, recipe)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        moe.save_pretrained(tmp)
        tokenizer = _load_tokenizer(path, gguf_file)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        record = {
            "source": str(path),
            "gguf_file": gguf_file,
            "architecture": moe.config.model_type,
            "moe_layers": moe_layer_indices(recipe.layers, dense.config.num_hidden_layers),
            "parameters": sum(p.numel() for p in moe.parameters()),
            "dense_parameters": sum(p.numel() for p in dense.parameters()),
            **asdict(recipe),
        }
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the model folder should read like any other
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _load_tokenizer(path, gguf_file):
    from transformers import AutoTokenizer

    kwargs = gguf_kwargs(gguf_file)
    try:
        return AutoTokenizer.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError, TypeError):
        return None  # a model folder without a tokenizer: the MoE is saved alone, as the source was
