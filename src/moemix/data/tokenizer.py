"""Train a small byte-level BPE tokenizer on the fly, with a ChatML chat template, cached on disk.

The offline demo has no pretrained tokenizer to download, so it trains one on its own data in about a second and
caches it under a key made of the texts, the vocabulary size and :data:`TOKENIZER_VERSION`.

Special tokens (ids 0-3, each always a single token, never split or merged):

- ``<|endoftext|>``: document boundary; also ``bos_token`` and ``unk_token`` (byte-level BPE never produces an
  unknown token, but some code expects one to be set). Nothing adds it automatically.
- ``<|pad|>``: ``pad_token``, distinct from every token the model should learn.
- ``<|im_start|>``: opens a chat turn (an extra special token, so ``skip_special_tokens`` drops it).
- ``<|im_end|>``: closes a chat turn; ``eos_token``, so generation stops at the end of the assistant's turn.

The chat template renders each message as ``<|im_start|>{role}\\n{content}<|im_end|>`` (roles system, user,
assistant), turns separated by ``\\n``; ``add_generation_prompt`` appends ``\\n<|im_start|>assistant\\n``.
An assistant's ``content<|im_end|>`` sits inside ``{% generation %}``, so ``apply_chat_template(...,
return_assistant_tokens_mask=True, return_dict=True)`` marks exactly the tokens the model must learn to produce,
the closing ``<|im_end|>`` included. Every message renders independently of the ones after it, so the rendering
of ``messages[:i]`` (with ``add_generation_prompt=True`` when ``messages[i]`` is the assistant's) is a prefix of
the rendering of ``messages``; and since the newline between turns belongs to the next turn, the text between
those two prefix renders is exactly the masked ``content<|im_end|>``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from moemix.errors import ConfigError, DataError

ENDOFTEXT = "<|endoftext|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (ENDOFTEXT, PAD, IM_START, IM_END)

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    # The newline between turns opens the next turn rather than closing this one, so that a render of
    # messages[:i+1] ends exactly at the assistant's <|im_end|>: prefix-render spans then equal the mask below.
    "{%- if not loop.first -%}{{ '\\n' }}{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{%- elif message['role'] == 'system' or message['role'] == 'user' -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' }}"
    "{%- else -%}"
    "{{ raise_exception('unknown chat role ' + message['role'] + '; expected system, user or assistant') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{%- if messages -%}{{ '\\n' }}{%- endif -%}{{ '<|im_start|>assistant\\n' }}"
    "{%- endif -%}"
)

# Part of the cache key: change it whenever the template, the special tokens or the training recipe change, so
# that old cached tokenizers are not reused.
TOKENIZER_VERSION = "moemix-bytelevel-bpe-chatml-v1"

_MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # the byte alphabet plus the special tokens


def default_cache_dir() -> Path:
    """The root of moemix's on-disk cache: ``$MOEMIX_CACHE`` if set, else ``~/.cache/moemix``.

    Returns:
        The folder (it may not exist yet).
    """
    root = os.environ.get("MOEMIX_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "moemix"


def tokenizer_cache_key(texts: list[str], vocab_size: int) -> str:
    """The cache key of a tokenizer: sha256 over the version, the vocabulary size and the texts, in order.

    Args:
        texts: The training texts.
        vocab_size: The requested vocabulary size.

    Returns:
        A 64-character hex digest.
    """
    digest = hashlib.sha256(f"{TOKENIZER_VERSION}\0{vocab_size}\0".encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        # Length prefixes keep ["ab", "c"] and ["a", "bc"] apart.
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = 2048, cache_dir: str | os.PathLike[str] | None = None
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts``, or load it from the cache if trained before.

    Args:
        texts: The training texts (read once, kept in memory).
        vocab_size: The largest vocabulary, special tokens and the 256 byte tokens included; a small corpus
            may give fewer tokens.
        cache_dir: The folder holding one subfolder per cache key; defaults to
            ``default_cache_dir() / "tokenizers"``.

    Returns:
        The tokenizer, loaded from ``cache_dir/<key>/`` with ``AutoTokenizer``, with the special tokens and the
        chat template described in this module's docstring.

    Raises:
        DataError: If there is no text to train on, or an item is not a string.
        ConfigError: If ``vocab_size`` is below 260 (256 bytes plus 4 special tokens).
    """
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"tokenizer training text {i}: expected a string, got {type(text).__name__}")
    if not any(texts):
        raise DataError("tokenizer training texts: no text to train on (the input is empty)")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < _MIN_VOCAB:
        raise ConfigError(f"tokenizer vocab_size: must be an integer >= {_MIN_VOCAB}, got {vocab_size!r}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "tokenizers"
    final = root / tokenizer_cache_key(texts, vocab_size)
    # The folder appears only by an atomic rename of a complete save, so its existence means it is usable.
    if not final.is_dir():
        _publish(_train(texts, vocab_size), final)
    return AutoTokenizer.from_pretrained(str(final), local_files_only=True)


def _train(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.BPE())
    # No prefix space, so that decode(encode(text)) == text exactly, leading spaces included.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 bytes, seen or not, so that any text encodes without unknown tokens.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=ENDOFTEXT,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=ENDOFTEXT,
        extra_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
    )


def _publish(tokenizer: PreTrainedTokenizerFast, final: Path) -> None:
    """Save into a temporary folder beside ``final``, then rename it into place (atomic on one filesystem)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the published folder should read like any other
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise
        # Another process published the same key first; its tokenizer was trained on the same input, keep it.
