"""The DP compilers, one module per way of fetching (`base.Compiler`): `copy` (standard, local,
window: COPY by position), `sparse` (Lemma A.12), `linear` (Lemma A.9) and `decay` (gated,
retention: A.9 with every decay held near 1)."""

from __future__ import annotations

from constructions.compilers.base import EPS, ETA, Compiler, Stage
from constructions.compilers.copy import Local, Standard, Window
from constructions.compilers.decay import Gated, Retention
from constructions.compilers.linear import Linear
from constructions.compilers.sparse import Sparse

REGISTRY: dict[str, Compiler] = {
    c.name: c for c in (Standard(), Local(), Sparse(), Linear(), Window(), Gated(), Retention())
}
COMPILERS = ("standard", "local", "sparse", "linear")  # the paper's (Theorems 4.1, B.3, B.4, Prop. 5.4)
FOR_NEW_MIXERS = ("window", "gated", "retention")  # compilers for mixers beyond the paper's
ALL_COMPILERS = COMPILERS + FOR_NEW_MIXERS

__all__ = ["ALL_COMPILERS", "COMPILERS", "EPS", "ETA", "FOR_NEW_MIXERS", "REGISTRY", "Compiler", "Stage", "get"]


def get(name: str) -> Compiler:
    if name not in REGISTRY:
        raise ValueError(f"compile: compiler {name!r} is not one of {', '.join(ALL_COMPILERS)}")
    return REGISTRY[name]
