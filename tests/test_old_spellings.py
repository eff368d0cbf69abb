"""The mixer's first names, accepted only where saved commands and runs need them."""

import pytest

from experiments import common
from jaxdp import cli


def test_saved_experiment_commands_keep_their_models_flag():
    p = common.parser("fig1", "", ("lis",), ("standard",))
    new = p.parse_args(["--mixers", "linear", "sparse"]).mixers
    assert p.parse_args(["--models", "linear", "sparse"]).mixers == new == ["linear", "sparse"]
    assert "--models" not in p.format_help()  # the old name is not offered


@pytest.mark.parametrize("flag", ["--mixer", "--model"])
def test_train_reads_the_mixer_under_either_flag(flag, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--task", "lis", "--size", "3", "--dim", "8", flag, "sprase"])
    assert stop.value.code == 2
    assert "invalid choice: 'sprase'" in capsys.readouterr().err
