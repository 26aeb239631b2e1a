"""Loading from a GGUF file: the one keyword every ``from_pretrained`` call of moemix passes for it."""

from __future__ import annotations


def gguf_kwargs(gguf_file: str | None) -> dict[str, str]:
    """Keyword arguments of ``from_pretrained`` that load ``gguf_file`` (inside the model folder) when given.

    Args:
        gguf_file: A GGUF file name, or None to load the folder's safetensors weights.

    Returns:
        ``{"gguf_file": gguf_file}``, or ``{}`` when there is none.
    """
    return {"gguf_file": gguf_file} if gguf_file else {}
