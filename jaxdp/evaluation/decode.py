"""Batched greedy generation (docs/paper.md §4: token by token until `<eos>`).

`greedy` uses the model's decode state (KV cache / sparse cache / (S, z)): a prefill over the
first `prefill_len` positions, then one `decode_step` per position inside a `lax.while_loop`
over a fixed buffer, teacher-forcing each row's own prompt until its `prompt_len` and stopping when
every row has written `<eos>`. `greedy_full` is its slow twin: a full forward over the whole
buffer at every position. Both write `<pad>` after a row's `<eos>`.

The functions take the model split as ``graphdef, state = nnx.split(model)`` (eval mode) so that
they compile once per (model, shape); target tokens past `prompt_len` are never read.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from jaxdp.runtime.devices import batch_devices, batch_mesh, replicate, shard_rows


def _prompts_only(tokens_BxT, prompt_len_B):
    keep = jnp.arange(tokens_BxT.shape[1])[None, :] < prompt_len_B[:, None]
    return jnp.where(keep, tokens_BxT, 0).astype(jnp.int32)


def _write(buf, pos, next_B, prompt_len_B, done_B, eos_id: int):
    """Position `pos` gets the prompt token inside the prompt, else the prediction (or <pad> once
    the row is done, id 0); returns the buffer and the updated done flags."""
    generated = pos >= prompt_len_B
    token = jnp.where(generated, jnp.where(done_B, 0, next_B), buf[:, pos])
    buf = buf.at[:, pos].set(token)
    return buf, done_B | (generated & (token == eos_id))


SEGMENT = 64  # positions per decoding segment: a growable state is grown by this much at a time


def segment_ends(prefill_len: int, T: int, segment: int = SEGMENT) -> list[int]:
    """Where each decoding segment ends: the first multiple of `segment` past the prompt, every
    multiple after it, and T."""
    first = (prefill_len // segment + 1) * segment
    return [*range(first, T, segment), T] if first < T else [T]


@functools.partial(jax.jit, static_argnames=("graphdef", "prefill_len", "eos_id"))
def greedy(graphdef, state, tokens_BxT, prompt_len_B, *, prefill_len: int, eos_id: int):
    """Greedy decoding with the decode state. `prefill_len` (static, 1 <= it <= min prompt_len)
    positions go through one prefill; the rest of each prompt is fed step by step. Where every
    layer's state can grow (`Transformer.grow_decode_state`: the standard KV cache), the state
    starts with room for the first segment and grows by `SEGMENT` positions between segments,
    so that a step reads about as many cache slots as are filled, not the whole buffer."""
    model = nnx.merge(graphdef, state)
    B, T = tokens_BxT.shape
    buf = _prompts_only(tokens_BxT, prompt_len_B)
    ends = segment_ends(prefill_len, T)
    dstate = model.init_decode_state(B, ends[0])
    if len(ends) > 1 and model.grow_decode_state(dstate, T) is None:  # traced only, never run
        ends, dstate = [T], model.init_decode_state(B, T)
    logits, dstate = model.prefill(dstate, buf[:, :prefill_len])
    carry = (jnp.int32(prefill_len), buf, dstate, jnp.argmax(logits[:, -1], -1).astype(jnp.int32), jnp.zeros(B, bool))

    def body(carry):
        pos, buf, dstate, next_B, done = carry
        buf, done = _write(buf, pos, next_B, prompt_len_B, done, eos_id)
        logits, dstate = model.decode_step(dstate, buf[:, pos])
        return pos + 1, buf, dstate, jnp.argmax(logits, -1).astype(jnp.int32), done

    for end in ends:
        pos, buf, dstate, next_B, done = carry
        if dstate.positions_TxD.shape[0] < end:
            dstate = model.grow_decode_state(dstate, end)
        cond = lambda carry, end=end: (carry[0] < end) & ~jnp.all(carry[-1])  # noqa: E731
        carry = jax.lax.while_loop(cond, body, (pos, buf, dstate, next_B, done))
    return carry[1]


@functools.partial(jax.jit, static_argnames=("graphdef", "eos_id"))
def greedy_full(graphdef, state, tokens_BxT, prompt_len_B, *, eos_id: int):
    """Greedy decoding by a full forward pass over the buffer at every position (slow twin)."""
    model = nnx.merge(graphdef, state)
    B, T = tokens_BxT.shape
    buf = _prompts_only(tokens_BxT, prompt_len_B)

    def cond(carry):
        pos, _, done = carry
        return (pos < T) & ~jnp.all(done)

    def body(carry):
        pos, buf, done = carry
        logits = model(buf, deterministic=True)
        next_B = jnp.argmax(jax.lax.dynamic_index_in_dim(logits, pos - 1, 1, keepdims=False), -1)
        buf, done = _write(buf, pos, next_B.astype(jnp.int32), prompt_len_B, done, eos_id)
        return pos + 1, buf, done

    start = jnp.maximum(jnp.min(prompt_len_B), 1).astype(jnp.int32)  # earlier positions are every row's prompt
    return jax.lax.while_loop(cond, body, (start, buf, jnp.zeros(B, bool)))[1]


def padded_batches(n: int, batch_size: int):
    """(rows, index) per batch: `rows` are the batch's rows, `index` the rows to feed, padded
    with copies of row 0 to `batch_size` (when there is more than one batch) so that every batch
    has one shape and compiles once."""
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n))
        index = np.concatenate([rows, np.zeros(batch_size - len(rows), int)]) if n > batch_size else rows
        yield rows, index


def row_placement(state, batch: int, devices=None):
    """(place, state): `place(rows)` puts a batch's rows on the device(s) that decode them, and
    `state` (the model's) is on each of them. Over several devices (`jaxdp.runtime.devices.batch_devices`,
    e.g. a CPU's cores) the rows are split and decoded concurrently; every row's tokens are the
    same as on one device, since each row is decoded on its own."""
    chosen = batch_devices(batch, devices)
    if len(chosen) == 1 and devices is None:
        return jnp.asarray, state
    mesh = batch_mesh(chosen)
    return (lambda rows: shard_rows(rows, mesh)), replicate(state, mesh)


def generate(
    model: nnx.Module,
    tokens: np.ndarray,
    prompt_len: np.ndarray,
    *,
    eos_id: int,
    batch_size: int = 256,
    full: bool = False,
    prefill_len: int | None = None,
    progress: bool = False,
    devices=None,
) -> np.ndarray:
    """Greedy completions of every row's prompt, in batches of `batch_size`. Returns int32 [N, T].
    Puts `model` in eval mode. Each batch's rows are split over `devices` (default: the most of
    this process's devices that divide the batch, `row_placement`)."""
    model.eval()
    graphdef, state = nnx.split(model)
    tokens = np.asarray(tokens, np.int32)
    prompt_len = np.asarray(prompt_len, np.int32)
    n = len(tokens)
    prefill_len = int(prompt_len.min()) if prefill_len is None else prefill_len
    out = np.zeros_like(tokens)
    place, state = row_placement(state, min(n, batch_size), devices)
    bar = tqdm(total=n, unit="ex", desc="greedy decoding", disable=not progress, leave=False, dynamic_ncols=True)
    for rows, index in padded_batches(n, batch_size):
        args = (graphdef, state, place(tokens[index]), place(prompt_len[index]))
        if full:
            result = greedy_full(*args, eos_id=eos_id)
        else:
            result = greedy(*args, prefill_len=prefill_len, eos_id=eos_id)
        out[rows] = np.asarray(result)[: len(rows)]
        bar.update(len(rows))
    bar.close()
    return out
