"""The paper's experiments as resumable sweeps: ``python -m experiments.fig1 --preset gpu``."""
