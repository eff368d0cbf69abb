"""jaxdp: a JAX/Flax reimplementation of "Do Efficient Transformers Really Save Computation?"
(Yang et al., ICML 2024). See README.md; the paper's definitions are summarised in SPEC.md."""

__version__ = "0.1.0"
