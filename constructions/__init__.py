"""Hand-set weights for jaxdp's own modules that realise the paper's constructive proofs
(Appendix A), each measured against what its lemma promises.

* `residual`: named subspaces of the residual stream; placing MLPs and heads; writing parameters
  into `jaxdp.models` modules by path.
* `mlp`: Lemmas A.1–A.7 (GeLU MLPs). `attention`: Lemmas A.8, A.9, A.11, A.12.
* `handset`: running hand-set blocks in float64/float32/bfloat16. `checks`: the case table.
* `report`: the precision study, ``python -m constructions.report``.

Imports `jaxdp.models`, never the reverse.
"""
