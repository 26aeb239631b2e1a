"""What ``moemix eval`` evaluates: a run folder, a model or adapter folder, or ``builtin:smollm2``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from moemix.errors import ConfigError
from moemix.models.gguf import gguf_kwargs


@dataclass
class Target:
    """A loaded model to evaluate.

    Attributes:
        name: As the user gave it.
        kind: ``run`` (a moemix run folder), ``model``, ``adapter`` (a LoRA adapter folder) or ``builtin``.
        model: The model, in eval mode.
        tokenizer: Its tokenizer, with a pad token.
        run_dir: The run folder, for a run.
    """

    name: str
    kind: str
    model: object
    tokenizer: object
    run_dir: Path | None = None


def _tokenizer(*sources, gguf_file: str | None = None):
    from transformers import AutoTokenizer

    last = None
    for source in sources:
        try:
            tok = AutoTokenizer.from_pretrained(str(source), **gguf_kwargs(gguf_file))
            break
        except (OSError, ValueError, TypeError) as err:
            last = err
    else:
        raise ConfigError(f"eval: cannot load a tokenizer from {', '.join(map(str, sources))} ({last})")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_target(name: str, gguf_file: str | None = None) -> Target:
    """Load what ``name`` points to.

    A run folder is one with ``model/`` inside (what ``moemix train`` and ``moemix demo`` write); its model is
    a full model or a LoRA adapter. A folder with ``adapter_config.json`` is loaded on its base model.

    Raises:
        ConfigError: If nothing loadable is there.
    """
    from transformers import AutoModelForCausalLM

    from moemix.models.default import BUILTIN_PREFIX, resolve_source
    from moemix.models.lora import is_adapter, load_adapter

    run_dir = None
    if name.startswith(BUILTIN_PREFIX):
        folder, gguf = resolve_source(name, gguf_file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf)
        return Target(name, "builtin", model.eval(), _tokenizer(folder, gguf_file=gguf))
    path = Path(name)
    if not path.is_dir():
        raise ConfigError(f"eval: {name}: not a run folder, model folder or builtin:smollm2")
    if (path / "model").is_dir():
        run_dir, path = path, path / "model"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")  # upcycled Qwen2-MoE
        if is_adapter(path):
            model = load_adapter(path)
            base = model.peft_config["default"].base_model_name_or_path
            return Target(name, "run" if run_dir else "adapter", model, _tokenizer(path, base), run_dir)
        if not (path / "config.json").is_file():
            raise ConfigError(f"eval: {path}: no config.json or adapter_config.json; not a model folder")
        try:
            kwargs = gguf_kwargs(gguf_file)
            model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs).eval()
        except (OSError, ValueError) as err:
            raise ConfigError(f"eval: cannot load a model from {path} ({str(err).splitlines()[0]})") from None
    return Target(name, "run" if run_dir else "model", model, _tokenizer(path, gguf_file=gguf_file), run_dir)
