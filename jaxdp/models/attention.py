"""The kernels of the paper's three mixers as plain functions, by their historical names.

The mixers themselves live in `jaxdp.models.mixers` (one module each, behind one protocol); this
module re-exports the functions of `standard`, `sparse` and `linear` so that code written
against ``jaxdp.models.attention`` keeps working: every kernel takes per-head queries, keys and
values ``q_BxLxHxK`` and returns the mixed values ``o_BxLxHxK``.
"""

from jaxdp.models.mixers.linear import (
    LinearState,
    feature_map,
    linear_chunked,
    linear_init,
    linear_prefill,
    linear_quadratic,
    linear_scan,
    linear_scan_with_state,
    linear_step,
    linear_weights,
)
from jaxdp.models.mixers.softmax import masked_softmax_attention, softmax_weights
from jaxdp.models.mixers.sparse import (
    SparseCache,
    sparse_blocked,
    sparse_init,
    sparse_masked,
    sparse_prefill,
    sparse_step,
)
from jaxdp.models.mixers.standard import KVCache, kv_init, kv_prefill, kv_step, standard

__all__ = [
    "KVCache",
    "LinearState",
    "SparseCache",
    "feature_map",
    "kv_init",
    "kv_prefill",
    "kv_step",
    "linear_chunked",
    "linear_init",
    "linear_prefill",
    "linear_quadratic",
    "linear_scan",
    "linear_scan_with_state",
    "linear_step",
    "linear_weights",
    "masked_softmax_attention",
    "softmax_weights",
    "sparse_blocked",
    "sparse_init",
    "sparse_masked",
    "sparse_prefill",
    "sparse_step",
    "standard",
]
