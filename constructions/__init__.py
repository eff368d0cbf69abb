"""Hand-set weights for jaxdp's own modules that realise the paper's constructive proofs
(Appendices A–C), each measured against what its lemma or theorem promises.

* `residual`: named subspaces of the residual stream; placing MLPs and heads; writing parameters
  into `jaxdp.models` modules by path.
* `mlp`: Lemmas A.1–A.7 (GeLU MLPs) and A.12's MLPs. `attention`: Lemmas A.8, A.9, A.11, A.12.
* `handset`: running hand-set blocks in float64/float32/bfloat16. `checks`: the case table.
* `report`: the precision study, ``python -m constructions.report``.
* `dp`: the `DPSpec` protocol of DPs of the form eq. (9)–(10) and `GridDP` (ED, LCS, plain or
  m-local); `line`: `LineDP`, a 1-D DP with fixed look-backs. `program`: the ReLU nets their
  MLPs are written in. `compile`: whole models that generate a DP's CoT, a pipeline of the
  stages of `compilers` (Theorems 4.1, B.3, B.4, Proposition 5.4; window, gated, retention).
* `arithmetic`: Proposition 5.1's step rule for Arithmetic as five layers' reads and MLPs;
  `arithmetic_model`: its hand-set weights, standard or sparse (B ≈ √L), with a constant D.
* `bounds`: the pigeonhole lower bounds B.5, B.6, C.1, C.4. `scaling`: D vs L for all of them,
  ``python -m constructions.scaling``.

Imports `jaxdp.models`, never the reverse.
"""
