"""The stopping rule of a run (`jaxdp.training.protocol.TrainConfig`'s ``check_every`` and after).

Every ``check_every`` steps a run decodes the first ``check_examples`` examples of its validation
set (never the test set) and appends their accuracy to its list of checks. `reason` reads that
list alone, so a resumed run, which restores the list with its checkpoint, stops exactly where an
uninterrupted one does:

* ``solved``: the last check reached ``solved_at``;
* ``plateau``: the best of the last ``plateau_checks`` checks is less than ``plateau_delta``
  above the best before them (the validation score, not the training loss, which keeps falling
  while a model memorises its training set);
* otherwise the run goes on, and ends its budget (``epochs``) as ``budget``.

>>> from jaxdp.training.protocol import TrainConfig
>>> rule = TrainConfig(check_every=10, solved_at=0.9, plateau_checks=2, plateau_delta=0.05)
>>> reason([0.2, 0.5, 0.93], rule), reason([0.2, 0.5, 0.52, 0.54], rule), reason([0.2, 0.5, 0.6], rule)
('solved', 'plateau', None)
"""

from __future__ import annotations

from collections.abc import Sequence

REASONS = ("solved", "plateau", "budget")


def reason(scores: Sequence[float], config) -> str | None:
    """Why a run whose checks scored `scores` (oldest first) stops now, or None to go on."""
    if config.check_every is None or not scores:
        return None
    if scores[-1] >= config.solved_at:
        return "solved"
    p = config.plateau_checks
    if len(scores) > p and max(scores[-p:]) < max(scores[:-p]) + config.plateau_delta:
        return "plateau"
    return None
