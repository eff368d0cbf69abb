"""`experiments.study_hours`: the training seconds of the runs a results.csv names, by mixer."""

import json

from experiments import study_hours
from jaxdp.sweeps import collect


def write_runs(root, runs):
    """Run folders named by digest, each with a result.json of its train_seconds."""
    for digest, _, seconds in runs:
        folder = root / "lis" / digest
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({"train_seconds": seconds}))


def test_the_hours_are_the_named_runs_seconds_summed_by_mixer(tmp_path, capsys):
    runs = [("a1", "standard", 1800.0), ("b2", "standard", 900.0), ("c3", "linear", 3600.0)]
    write_runs(tmp_path / "runs", [*runs, ("d4", "linear", 7200.0)])  # d4: not in the csv
    collect.write_csv([{"digest": d, "mixer": m} for d, m, _ in runs], tmp_path / "results.csv")
    assert study_hours.training_seconds(tmp_path / "results.csv", tmp_path / "runs") == {
        "standard": 2700.0,
        "linear": 3600.0,
    }
    assert study_hours.main([str(tmp_path / "results.csv"), str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.startswith("3 runs, 1.75 core-hours of training (linear 1.00, standard 0.75)")


def test_a_run_missing_from_the_runs_folder_is_named_with_exit_2(tmp_path, capsys):
    write_runs(tmp_path / "runs", [("a1", "standard", 10.0)])
    collect.write_csv([{"digest": d, "mixer": "standard"} for d in ("a1", "zz")], tmp_path / "results.csv")
    assert study_hours.main([str(tmp_path / "results.csv"), str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1 runs of") and "zz" in err and len(err.strip().splitlines()) == 1
