"""`python -m constructions.report`: the precision table, its JSON lines and its plot."""

import json

import pytest

from constructions import report
from constructions.checks import Measurement

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


def _m(dtype, err, eps=1e-3, name="agg"):
    return Measurement(name, "A.9", 4, eps, dtype, err, eps, 1.0, 1.0, 1.0, "μ")


def test_smallest_format_is_the_narrowest_that_meets_eps():
    assert report.smallest_format([_m("float64", 1e-9), _m("float32", 1e-4), _m("bfloat16", 1e-2)]) == "float32"
    assert report.smallest_format([_m("float64", 1e-9), _m("float32", 1e-2), _m("bfloat16", 1e-4)]) == "bfloat16"
    assert report.smallest_format([_m("float64", 1.0)]) == "—"
    table = report.table([_m("float64", 1e-9), _m("float32", 2e-3), _m("bfloat16", 1.0)])
    assert "| A.9 | agg | 4 | 1e-03 | 1.0e-09 | 2.0e-03 ✗ | 1.0e+00 ✗ | float64 |" in table


def test_json_lines_and_plot(tmp_path, capsys):
    out = tmp_path / "precision.png"
    assert report.main(["--checks", "linear", "--quick", "--json", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 * 3  # sizes x dtypes
    for row in rows:
        assert {"name", "lemma", "dtype", "max_error", "eps", "ok"} <= set(row)
        assert row["ok"] == (row["max_error"] <= row["eps"])
    assert {(r["lemma"], r["dtype"]) for r in rows if r["ok"]} >= {("A.3", "float64"), ("A.3", "float32")}
    assert out.stat().st_size > 10_000


def test_unknown_check_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        report.main(["--checks", "agg,nope"])
    assert "--checks: unknown nope" in capsys.readouterr().err
