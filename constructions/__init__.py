"""Hand-set weights for jaxdp's own modules realising the paper's constructive proofs
(Appendices A–C). Imports `jaxdp.models`, never the reverse. Filled in by later issues."""
