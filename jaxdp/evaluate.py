"""Metrics (SPEC §4): final-answer accuracy of greedy decoding, the token before `<eos>`; as
diagnostics, whole-CoT exact match and teacher-forced per-token accuracy."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdp import decode
from jaxdp.tasks.base import EOS
from jaxdp.tasks.dataset import Dataset


def final_answers(tokens_BxT: np.ndarray, prompt_len_B: np.ndarray, eos_id: int) -> np.ndarray:
    """The token before each row's first generated `<eos>`, or -1 where there is none."""
    T = tokens_BxT.shape[1]
    generated = np.arange(T)[None, :] >= prompt_len_B[:, None]
    is_eos = (tokens_BxT == eos_id) & generated
    has_eos = is_eos.any(axis=1)
    first = np.argmax(is_eos, axis=1)
    answers = tokens_BxT[np.arange(len(tokens_BxT)), np.maximum(first - 1, 0)]
    return np.where(has_eos & (first > prompt_len_B), answers, -1)


def cot_exact_match(pred_BxT: np.ndarray, true_BxT: np.ndarray, length_B: np.ndarray) -> np.ndarray:
    """Whether the whole sequence up to and including `<eos>` equals the reference."""
    upto = np.arange(true_BxT.shape[1])[None, :] < length_B[:, None]
    return np.all((pred_BxT == true_BxT) | ~upto, axis=1)


@functools.partial(jax.jit, static_argnames="graphdef")
def _teacher_forced_hits(graphdef, state, tokens_BxT, mask_BxT):
    logits = nnx.merge(graphdef, state)(tokens_BxT, deterministic=True)
    hits = (jnp.argmax(logits[:, :-1], -1) == tokens_BxT[:, 1:]) & mask_BxT[:, 1:]
    return hits.sum(), mask_BxT[:, 1:].sum()


def evaluate(model: nnx.Module, dataset: Dataset, *, batch_size: int = 256, limit: int | None = None,
             full: bool = False) -> dict[str, float]:  # fmt: skip
    """Greedy-decode the first `limit` examples (all by default) and score them."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    tokens = dataset.tokens[:n].astype(np.int32)
    prompt_len, length = dataset.prompt_len[:n], dataset.length[:n]
    eos_id = dataset.task.vocab.index(EOS)
    pred = decode.generate(model, tokens, prompt_len, eos_id=eos_id, batch_size=batch_size, full=full)
    answers = final_answers(pred, prompt_len, eos_id)
    truth = final_answers(tokens, prompt_len, eos_id)
    graphdef, state = nnx.split(model)
    hits = total = 0
    mask = dataset.loss_mask[:n]
    for start in range(0, n, batch_size):
        h, t = _teacher_forced_hits(graphdef, state, jnp.asarray(tokens[start:start + batch_size]),
                                    jnp.asarray(mask[start:start + batch_size]))  # fmt: skip
        hits, total = hits + int(h), total + int(t)
    return {
        "accuracy": float(np.mean(answers == truth)),
        "cot_exact_match": float(np.mean(cot_exact_match(pred, tokens, length))),
        "token_accuracy": hits / max(total, 1),
        "examples": n,
    }
