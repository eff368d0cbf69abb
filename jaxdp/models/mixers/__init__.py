"""The mixers: one module per way of mixing values, behind one protocol (`base.Mixer`) and one
registry. Importing this package registers the built-in ones:

* ``standard``: causal softmax attention, eq. (3)-(4);
* ``sparse``: softmax over the eq. (6) set (window of kB plus c summary tokens per block);
* ``linear``: eq. (7)-(8), φ = elu + 1;
* ``window``: softmax over the last w tokens (a sliding window);
* ``retention``: linear attention with a fixed decay per head (RetNet);
* ``gated``: linear attention with a data-dependent decay per head (GLA; Mamba-2's decay);
* ``mamba2``: Mamba-2's SSD layer (selective decay, expanded state, gated RMSNorm);
* ``deltanet``, ``gated_deltanet``: the delta rule, without and with a selective decay.

>>> available()[:3]
('standard', 'sparse', 'linear')
>>> get("sparse").forms
('masked', 'blocked')
"""

from jaxdp.models.mixers.base import ConfigError, Mixer, MixerOptions, available, get, owners, register

# isort: off
# registers the built-in mixers, in the order `available` lists them (the paper's three first)
from jaxdp.models.mixers import standard, sparse, linear, window, retention, gated, mamba2, deltanet  # noqa: F401
# isort: on

__all__ = ["ConfigError", "Mixer", "MixerOptions", "available", "get", "owners", "register"]
