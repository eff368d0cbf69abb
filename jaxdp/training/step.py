"""The training step as in the paper (§6.1): AdamW (0.9, 0.999, lr 1e-4, weight decay 0.01 on
weight matrices and embeddings, none on biases and norms), 5 warm-up epochs then linear decay to 0,
next-token NLL on the CoT, answer and `<eos>`; the settings are `jaxdp.training.protocol`'s.

One jitted step in the functional NNX pattern: the model is split once into a graph definition
and pure pytrees (parameters, dropout RNG state), merged inside the step (`make_train_step`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxdp.models import ModelConfig, Transformer
from jaxdp.training.protocol import TrainConfig


class TrainState(NamedTuple):
    params: Any  # pure dict of nnx.Param values
    opt_state: Any
    rest: Any  # pure dict of the other model state (dropout RNG keys and counts)


def learning_rate(config: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    """Linear warm-up from 0 over `warmup_epochs`, then linear decay to 0 at the last step."""
    if config.schedule == "constant":
        return optax.constant_schedule(config.lr)
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    decay = optax.linear_schedule(config.lr, 0.0, max(total - warmup, 1))
    if warmup == 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, config.lr, warmup), decay], [warmup])


def optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW; weight decay only on leaves with two or more axes (weights, embedding)."""
    decay_mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)  # noqa: E731
    return optax.adamw(
        learning_rate(config, steps_per_epoch),
        b1=config.b1,
        b2=config.b2,
        weight_decay=config.weight_decay,
        mask=decay_mask,
    )


def loss_mask(prompt_len_B, length_B, T: int):
    """[B, T] targets: the CoT, the answer and <eos> (positions prompt_len .. length-1)."""
    i = jnp.arange(T)[None, :]
    return (i >= prompt_len_B[:, None]) & (i < length_B[:, None])


def nll(model: Transformer, tokens_BxT, prompt_len_B, length_B):
    """Mean next-token NLL over the masked targets: logits at t predict the token at t + 1."""
    tokens_BxT = tokens_BxT.astype(jnp.int32)
    logits = model(tokens_BxT)[:, :-1].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, tokens_BxT[:, 1:])
    mask = loss_mask(prompt_len_B, length_B, tokens_BxT.shape[1])[:, 1:]
    return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1)


def split_model(model: Transformer) -> tuple[nnx.GraphDef, Any, Any]:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(rest)


def loss_and_grads(graphdef: nnx.GraphDef, state: TrainState, tokens, prompt_len, length):
    """((loss, the model's other state after the step), gradients w.r.t. the parameters)."""

    def loss_fn(params, rest):
        model = nnx.merge(graphdef, params, rest)
        loss = nll(model, tokens, prompt_len, length)
        return loss, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))

    return jax.value_and_grad(loss_fn, has_aux=True)(state.params, state.rest)


def make_train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation):
    """(state, tokens, prompt_len, length) -> (state, loss), jitted once per shape. The input
    state's buffers are donated (updated in place): do not use a state after passing it in."""

    @functools.partial(jax.jit, donate_argnums=0)
    def step(state: TrainState, tokens, prompt_len, length):
        (loss, rest), grads = loss_and_grads(graphdef, state, tokens, prompt_len, length)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, rest), loss

    return step


def init_state(model_config: ModelConfig, train_config: TrainConfig, steps_per_epoch: int):
    model = Transformer(model_config, rngs=nnx.Rngs(train_config.seed))
    graphdef, params, rest = split_model(model)
    tx = optimizer(train_config, steps_per_epoch)
    return graphdef, tx, TrainState(params, tx.init(params), rest)


def load_model(graphdef: nnx.GraphDef, state: TrainState) -> Transformer:
    """The trained model (eval mode) from a training state."""
    model = nnx.merge(graphdef, jax.device_get(state.params), jax.device_get(state.rest))
    model.eval()
    return model
