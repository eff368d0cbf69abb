"""jaxdp: a JAX/Flax reimplementation of "Do Efficient Transformers Really Save Computation?"
(Yang et al., ICML 2024). See README.md; the paper's definitions and our decisions are in docs/paper.md."""

__version__ = "0.1.0"
