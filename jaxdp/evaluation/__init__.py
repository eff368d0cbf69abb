"""A trained model on its task: greedy decoding of the chain of thought (`decode`) and the
paper's scores of it, with the benchmark's teacher-forced one (`evaluate`)."""
