"""Scores of a trained model on a test set, as the paper and as the benchmark define them.

* ``accuracy`` (the paper's metric, §6.1): greedy decoding token by token until ``<eos>``; a
  sample counts if its final answer, the token before the first generated ``<eos>``, equals the
  reference's. A sample with no answer (no ``<eos>`` generated) never counts.
* ``teacher_forced_exact`` (the Feng et al. benchmark's metric for LIS and ED): the reference
  sequence is fed in and a sample counts only if the argmax prediction of *every* target token
  (the CoT, the answer and ``<eos>``) is right.
* Diagnostics: ``cot_exact_match`` (the whole greedily decoded sequence equals the reference)
  and ``token_accuracy`` (teacher-forced, per target token); ``loss``, the training objective
  (mean next-token NLL over the target tokens, `jaxdp.training.step.nll`) on these examples.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdp.evaluation import decode
from jaxdp.tasks.base import EOS
from jaxdp.tasks.dataset import Dataset

METRICS = ("accuracy", "teacher_forced_exact", "cot_exact_match", "token_accuracy")


def final_answers(tokens_BxT: np.ndarray, prompt_len_B: np.ndarray, eos_id: int) -> np.ndarray:
    """The token before each row's first generated `<eos>`, or -1 where there is none."""
    T = tokens_BxT.shape[1]
    generated = np.arange(T)[None, :] >= prompt_len_B[:, None]
    is_eos = (tokens_BxT == eos_id) & generated
    has_eos = is_eos.any(axis=1)
    first = np.argmax(is_eos, axis=1)
    answers = tokens_BxT[np.arange(len(tokens_BxT)), np.maximum(first - 1, 0)]
    return np.where(has_eos & (first > prompt_len_B), answers, -1)


def answer_correct(pred_BxT: np.ndarray, true_BxT: np.ndarray, prompt_len_B: np.ndarray, eos_id: int) -> np.ndarray:
    """Per row: the final answers agree and the prediction has one (-1, no answer, never counts)."""
    answers = final_answers(pred_BxT, prompt_len_B, eos_id)
    return (answers == final_answers(true_BxT, prompt_len_B, eos_id)) & (answers >= 0)


def cot_exact_match(pred_BxT: np.ndarray, true_BxT: np.ndarray, length_B: np.ndarray) -> np.ndarray:
    """Whether the whole sequence up to and including `<eos>` equals the reference."""
    upto = np.arange(true_BxT.shape[1])[None, :] < length_B[:, None]
    return np.all((pred_BxT == true_BxT) | ~upto, axis=1)


@functools.partial(jax.jit, static_argnames="graphdef")
def _teacher_forced(graphdef, state, tokens_BxT, mask_BxT):
    """(hits, targets, summed NLL) per row: argmax and log-likelihood at t-1 of the token at t,
    on the targets."""
    logits = nnx.merge(graphdef, state)(tokens_BxT, deterministic=True)[:, :-1].astype(jnp.float32)
    targets = mask_BxT[:, 1:]
    hits = (jnp.argmax(logits, -1) == tokens_BxT[:, 1:]) & targets
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, tokens_BxT[:, 1:])
    return hits.sum(axis=1), targets.sum(axis=1), jnp.sum(jnp.where(targets, losses, 0.0), axis=1)


def teacher_forced(
    model: nnx.Module, tokens: np.ndarray, mask: np.ndarray, batch_size: int, with_nll: bool = False
) -> tuple[np.ndarray, ...]:
    """Per row, right target tokens and target tokens under teacher forcing (and, `with_nll`,
    the summed NLL of the targets)."""
    graphdef, state = nnx.split(model)
    n = len(tokens)
    hits, targets, nll = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.float64)
    for rows, index in decode.padded_batches(n, batch_size):
        h, t, loss = _teacher_forced(graphdef, state, jnp.asarray(tokens[index], jnp.int32), jnp.asarray(mask[index]))
        k = len(rows)
        hits[rows], targets[rows], nll[rows] = np.asarray(h)[:k], np.asarray(t)[:k], np.asarray(loss)[:k]
    return (hits, targets, nll) if with_nll else (hits, targets)


def evaluate(
    model: nnx.Module,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    limit: int | None = None,
    full: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Score the first `limit` examples (all by default) by every metric of the module docstring."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    tokens = dataset.tokens[:n].astype(np.int32)
    prompt_len, length = dataset.prompt_len[:n], dataset.length[:n]
    eos_id = dataset.task.vocab.index(EOS)
    pred = decode.generate(
        model, tokens, prompt_len, eos_id=eos_id, batch_size=batch_size, full=full, progress=progress
    )
    hits, targets, nll = teacher_forced(model, tokens, dataset.loss_mask[:n], batch_size, with_nll=True)
    return {
        "accuracy": float(np.mean(answer_correct(pred, tokens, prompt_len, eos_id))),
        "teacher_forced_exact": float(np.mean(hits == targets)),
        "cot_exact_match": float(np.mean(cot_exact_match(pred, tokens, length))),
        "token_accuracy": float(hits.sum() / max(targets.sum(), 1)),
        "loss": float(nll.sum() / max(targets.sum(), 1)),
        "examples": n,
    }
