"""The residual stream as named subspaces, and writing hand-set weights into jaxdp's modules.

A construction never speaks of raw coordinates. It declares a `Layout` — ordered, disjoint,
named subspaces of the D-dimensional residual stream (tracr's idea) — and says "the FFN reads
`p` and writes `b`", "the value map copies `window` into `copied`":

>>> layout = Layout(v=2, p=1, out=2)
>>> layout.dim, layout.slice("out")
(5, slice(3, 5, None))
>>> x = layout.embed(v=[[1.0, 2.0]], p=[[7.0]])
>>> x.tolist(), layout.read(x, "p").tolist()
([[1.0, 2.0, 7.0, 0.0, 0.0]], [[7.0]])

Two-layer MLPs are plain arrays (`MLP`: x -> W2 act(W1 x + b1) + b2); several act side by side
in one FFN by `ffn_params`, which places their hidden units one after another. `attention_params` places one
head's query/key/value/out maps. `write_params` copies a complete `{path: array}` dict into an
nnx module, refusing unknown paths, missing paths and wrong shapes, so a construction can never
silently leave a random initial weight in place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class Layout:
    """Ordered named subspaces of the residual stream; `Layout(v=2, p=1)` or `Layout([...])`."""

    def __init__(self, spaces: Iterable[tuple[str, int]] = (), /, **sizes: int):
        self.spaces: dict[str, slice] = {}
        start = 0
        for name, size in [*spaces, *sizes.items()]:
            if name in self.spaces:
                raise ValueError(f"Layout: subspace {name!r} is declared twice")
            if not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"Layout: subspace {name!r} needs a positive integer size, got {size!r}")
            self.spaces[name] = slice(start, start + int(size))
            start += int(size)
        self.dim = start

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={s.stop - s.start}" for n, s in self.spaces.items())
        return f"Layout({parts}; dim={self.dim})"

    def padded(self, multiple: int, name: str = "spare") -> Layout:
        """This layout plus an unused subspace that makes the width a multiple of `multiple`."""
        extra = -self.dim % multiple
        items = [(n, s.stop - s.start) for n, s in self.spaces.items()]
        return Layout(items + ([(name, extra)] if extra else []))

    def slice(self, name: str) -> slice:
        if name not in self.spaces:
            raise KeyError(f"Layout has no subspace {name!r}; it has {', '.join(self.spaces)}")
        return self.spaces[name]

    def size(self, name: str) -> int:
        s = self.slice(name)
        return s.stop - s.start

    def indices(self, names: str | Sequence[str]) -> np.ndarray:
        """Coordinates of one subspace or of several, concatenated in the given order."""
        names = [names] if isinstance(names, str) else list(names)
        return np.concatenate([np.arange(self.dim)[self.slice(n)] for n in names])

    def embed(self, **values) -> np.ndarray:
        """A float64 residual vector [..., D] holding `values` in their subspaces, 0 elsewhere."""
        arrays = {n: np.asarray(v, np.float64) for n, v in values.items()}
        if not arrays:
            raise ValueError("Layout.embed needs at least one named value")
        batch = np.broadcast_shapes(*(a.shape[:-1] for a in arrays.values()))
        x = np.zeros((*batch, self.dim))
        for name, a in arrays.items():
            if a.shape[-1] != self.size(name):
                raise ValueError(f"Layout.embed: {name!r} has size {self.size(name)}, got {a.shape[-1]}")
            x[..., self.slice(name)] = a
        return x

    def read(self, x, name: str):
        return x[..., self.slice(name)]


@dataclasses.dataclass(frozen=True)
class MLP:
    """Weights of a two-layer MLP x -> w2ᵀ act(w1ᵀ x + b1) + b2 on its own input/output spaces.

    Shapes: w1 [d_in, hidden], b1 [hidden], w2 [hidden, d_out], b2 [d_out] (float64).
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def __post_init__(self):
        d_in, h = self.w1.shape
        if self.b1.shape != (h,) or self.w2.shape[0] != h or self.b2.shape != (self.w2.shape[1],):
            raise ValueError(
                f"MLP: inconsistent shapes w1 {self.w1.shape}, b1 {self.b1.shape}, "
                f"w2 {self.w2.shape}, b2 {self.b2.shape}"
            )

    @property
    def hidden(self) -> int:
        return self.w1.shape[1]

    @property
    def d_in(self) -> int:
        return self.w1.shape[0]

    @property
    def d_out(self) -> int:
        return self.w2.shape[1]

    def norm(self) -> float:
        """The ℓ∞ norm of all parameters (the largest absolute entry)."""
        return float(max(np.abs(a).max(initial=0.0) for a in (self.w1, self.b1, self.w2, self.b2)))


def ffn_params(
    layout: Layout, hidden_dim: int, parts: Sequence[tuple[MLP, str | Sequence[str], str | Sequence[str]]]
) -> dict:
    """FFN parameters (paths `fc1.kernel` … `fc2.bias`) running each `(mlp, reads, writes)` in
    parallel: `mlp` reads the concatenation of subspaces `reads` and adds into `writes`."""
    D = layout.dim
    params = {
        "fc1.kernel": np.zeros((D, hidden_dim)),
        "fc1.bias": np.zeros(hidden_dim),
        "fc2.kernel": np.zeros((hidden_dim, D)),
        "fc2.bias": np.zeros(D),
    }
    start = 0
    for mlp, reads, writes in parts:
        rows, cols = layout.indices(reads), layout.indices(writes)
        if (len(rows), len(cols)) != (mlp.d_in, mlp.d_out):
            raise ValueError(
                f"ffn_params: an MLP {mlp.d_in} -> {mlp.d_out} cannot read {reads} "
                f"({len(rows)}) and write {writes} ({len(cols)})"
            )
        hid = np.arange(start, start + mlp.hidden)
        if hid.size and hid[-1] >= hidden_dim:
            raise ValueError(f"ffn_params: the MLPs need more than hidden_dim={hidden_dim} units")
        params["fc1.kernel"][np.ix_(rows, hid)] = mlp.w1
        params["fc1.bias"][hid] = mlp.b1
        params["fc2.kernel"][np.ix_(hid, cols)] = mlp.w2
        params["fc2.bias"][cols] += mlp.b2
        start += mlp.hidden
    return params


def zero_ffn(layout: Layout, hidden_dim: int) -> dict:
    return ffn_params(layout, hidden_dim, [])


def attention_params(layout: Layout, num_heads: int, heads: Mapping[int, Mapping[str, np.ndarray]]) -> dict:
    """Attention parameters (paths `query.kernel` … `out.bias`) with hand-set heads.

    `heads[h]` may hold `query`, `key`, `value` [D, K] and `query_bias`, `key_bias`,
    `value_bias` [K] (what head h computes from the residual stream) and `out` [K, D] (how its
    output is added back); whatever is not given is zero, so an unlisted head is inert.
    """
    D = layout.dim
    if D % num_heads:
        raise ValueError(f"attention_params: D={D} is not divisible by num_heads={num_heads}")
    K = D // num_heads
    params = {
        f"{m}.{p}": np.zeros((D, D) if p == "kernel" else D)
        for m in ("query", "key", "value", "out")
        for p in ("kernel", "bias")
    }
    for h, maps in heads.items():
        cols = slice(h * K, (h + 1) * K)
        for name, value in maps.items():
            value = np.asarray(value, np.float64)
            module, _, kind = name.partition("_")
            expected = {"": (D, K) if module != "out" else (K, D), "bias": (K,)}[kind]
            if module not in ("query", "key", "value", "out") or value.shape != expected:
                raise ValueError(
                    f"attention_params: head {h} entry {name!r} must have shape {expected}, got {value.shape}"
                )
            if module == "out":
                params["out.kernel"][cols, :] = value
            elif kind == "bias":
                params[f"{module}.bias"][cols] = value
            else:
                params[f"{module}.kernel"][:, cols] = value
    return params


def block_params(attention: dict, ffn: dict) -> dict:
    """A `Block`'s parameter dict (norm="none"): attention under `attn.`, FFN under `ffn.`."""
    return {**{f"attn.{k}": v for k, v in attention.items()}, **{f"ffn.{k}": v for k, v in ffn.items()}}


def _dotted(path) -> str:
    """A pytree key path as `attn.query.kernel`."""
    return ".".join(str(getattr(k, "key", k)) for k in path)


def param_paths(module: nnx.Module) -> dict[str, tuple[int, ...]]:
    """Every parameter of `module` as a dotted path (`attn.query.kernel`) and its shape."""
    pure = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    leaves = jax.tree_util.tree_flatten_with_path(pure)[0]
    return {_dotted(path): tuple(leaf.shape) for path, leaf in leaves}


def write_params(module: nnx.Module, values: Mapping[str, np.ndarray]) -> None:
    """Set every parameter of `module` from `values` (dotted path -> array), cast to the
    parameter dtype. Unknown paths, missing paths and wrong shapes are errors."""
    shapes = param_paths(module)
    unknown = sorted(set(values) - set(shapes))
    missing = sorted(set(shapes) - set(values))
    if unknown or missing:
        raise KeyError(f"write_params: unknown paths {unknown}, unwritten paths {missing}")
    for path, shape in shapes.items():
        if np.shape(values[path]) != shape:
            raise ValueError(f"write_params: {path} has shape {shape}, got {np.shape(values[path])}")
    state = nnx.state(module, nnx.Param)
    pure = nnx.to_pure_dict(state)

    fill = lambda path, leaf: jnp.asarray(values[_dotted(path)], leaf.dtype)  # noqa: E731
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_map_with_path(fill, pure))
    nnx.update(module, state)
