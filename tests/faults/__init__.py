"""Fault injection: every interruption a run on a shared, preempting cluster meets, in a real
subprocess of ``python -m jaxdp`` (or an experiment script), and what must come of it. A run
that can survive must end, once rerun, exactly as an uninterrupted run does (parameters bit for
bit, result.json, every metrics line); one that cannot must say so in one line. Signals and kills
land at chosen moments through the failpoints of `jaxdp.runtime.faults` (``JAXDP_FAULT=<point>@<n>[:SIGNAL]``).
The default run keeps one case of each kind; ``-m slow`` adds the rest.
"""
