"""Hand-set weights for jaxdp's own modules that realise the paper's constructive proofs
(Appendices A–C), each measured against what its lemma or theorem promises.

* `residual`: named subspaces of the residual stream; placing MLPs and heads; writing parameters
  into `jaxdp.models` modules by path.
* `mlp`: Lemmas A.1–A.7 (GeLU MLPs). `attention`: Lemmas A.8, A.9, A.11, A.12.
* `handset`: running hand-set blocks in float64/float32/bfloat16. `checks`: the case table.
* `report`: the precision study, ``python -m constructions.report``.
* `dp`: DPs of the form eq. (9)–(10) (`GridDP`: ED, LCS, plain or m-local). `program`: the ReLU
  nets their MLPs are written in. `compile`: whole models that generate a DP's CoT
  (Theorems 4.1, B.3, B.4, Proposition 5.4).
* `bounds`: the pigeonhole lower bounds B.5, B.6, C.1, C.4. `scaling`: D vs L for all of them,
  ``python -m constructions.scaling``.

Imports `jaxdp.models`, never the reverse.
"""
