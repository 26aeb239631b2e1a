"""Greedy generation of answers to prompts, through the tokenizer's chat template, in padded batches."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm


def render_prompt(tokenizer, prompt: str, system: str | None = None) -> str:
    """A user prompt as the model sees it: its chat template with the assistant's turn opened.

    A tokenizer without a chat template gets the prompt as it is (a base model continues it).
    """
    if not getattr(tokenizer, "chat_template", None):
        return prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 256,
    batch_size: int = 8,
    max_prompt_tokens: int | None = None,
    desc: str = "generate",
) -> list[str]:
    """Greedy completions of user prompts, one per prompt, special tokens removed.

    Args:
        model: A causal LM (or a peft model around one).
        tokenizer: Its tokenizer; prompts are rendered with its chat template (see :func:`render_prompt`).
        prompts: The user messages.
        max_new_tokens: Tokens generated at most per answer (generation also stops at the eos token).
        batch_size: Prompts per ``generate`` call (left-padded).
        max_prompt_tokens: Keep only the last this many prompt tokens (None: all).
        desc: Label of the progress bar.

    Returns:
        The decoded answers, in prompt order.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # new tokens follow every prompt's last token directly
    answers: list[str] = []
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False, disable=None):
            texts = [render_prompt(tokenizer, p) for p in prompts[start : start + batch_size]]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            if max_prompt_tokens is not None:
                enc = {k: v[:, -max_prompt_tokens:] for k, v in enc.items()}
            ids = enc["input_ids"].to(device)
            out = model.generate(
                input_ids=ids,
                attention_mask=enc["attention_mask"].to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            answers += tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return answers
