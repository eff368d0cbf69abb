"""``--log tensorboard,wandb`` and ``--eval-every``: the logged curves are read back by each tool's
own reader and compared with ``metrics.jsonl``, which stays the record. Skipped with a reason
where the `tracking` extra is not installed (the dev extra, and so CI, installs it)."""

import json
from pathlib import Path

import pytest

from jaxdp import cli
from jaxdp.runtime.errors import CheckpointError
from jaxdp.training import loggers, metrics

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

TRAIN = [
    "train",
    "--task",
    "lis",
    "--size",
    "4",
    "--option",
    "value_range=16",
    "--mixer",
    "standard",
    "--dim",
    "16",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--lr",
    "2e-3",
    "--warmup-epochs",
    "1",
    "--eval-examples",
    "16",
    "--set",
    "log_every=2",
    "--quiet",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    assert (
        cli.main(
            [
                "data",
                "--task",
                "lis",
                "--size",
                "4",
                "--option",
                "value_range=16",
                "--train",
                "128",
                "--test",
                "16",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_event_file_holds_the_logged_losses(data, tmp_path):
    pytest.importorskip("tensorboardX", reason="the tracking extra is not installed")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator", reason="tensorboard's reader is not installed"
    )
    run = tmp_path / "run"
    assert cli.main(TRAIN + ["--data", str(data), "--out", str(run), "--log", "tensorboard", "--eval-every", "1"]) == 0
    (events,) = (run / "tensorboard").glob("events.out.tfevents.*")
    reader = accumulator.EventAccumulator(str(events))
    reader.Reload()
    logged = [(r["step"], r["loss"]) for r in records(run) if "loss" in r]
    assert len(logged) == 4  # 128 / 32 = 4 steps per epoch, 2 epochs, a line every 2 steps
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in reader.Scalars("train/loss")] == logged
    evals = [(r["step"], r["eval_accuracy"]) for r in records(run) if "eval_accuracy" in r]
    assert [r for r, _ in evals] == [4, 8]  # after each epoch
    assert [(e.step, pytest.approx(e.value)) for e in reader.Scalars("eval/accuracy")] == evals


def test_wandb_offline_run_folder_holds_the_logged_losses(data, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the tracking extra is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    assert cli.main(TRAIN + ["--data", str(data), "--out", str(run), "--log", "wandb"]) == 0
    (offline,) = (run / "wandb").glob("offline-run-*")
    digest = json.loads((run / "config.json").read_text())["digest"]
    assert offline.name.endswith(digest)
    history = [(int(h["_step"]), float(h["train/loss"])) for h in wandb_history(next(offline.glob("*.wandb")))]
    assert history == [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in records(run)]


def wandb_history(path: Path) -> list[dict]:
    """The history rows of a W&B transaction log (``run-<id>.wandb``), read here without wandb's
    code: a 7-byte header (":W&B", magic, version), then LevelDB log records in 32 KiB blocks
    (crc32, length, type; FULL = 1, FIRST = 2, MIDDLE = 3, LAST = 4), each a `Record` protobuf."""
    import struct

    from wandb.proto import wandb_internal_pb2

    raw, block, pos, parts, rows = path.read_bytes(), 32768, 7, b"", []
    assert raw[:4] == b":W&B"
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a record header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        parts, pos = parts + raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            if record.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
            parts = b""
    return rows


def test_unknown_or_missing_logger_is_refused_before_training(data, tmp_path, capsys, monkeypatch):
    assert cli.main(TRAIN + ["--data", str(data), "--out", str(tmp_path / "a"), "--log", "mlflow"]) == 2
    assert capsys.readouterr().err.strip() == "error: --log: unknown logger 'mlflow'; choose one of: tensorboard, wandb"
    monkeypatch.setattr(loggers.TensorBoard, "module", "no_such_module_here")
    assert cli.main(TRAIN + ["--data", str(data), "--out", str(tmp_path / "b"), "--log", "tensorboard"]) == 2
    assert 'pip install -e ".[tracking]"' in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_scalar_names():
    assert loggers.scalars({"step": 3, "loss": 0.5, "lr": 1e-3, "eval_accuracy": 1.0, "note": "x"}) == {
        "train/loss": 0.5,
        "train/lr": 1e-3,
        "eval/accuracy": 1.0,
    }


class _Writer:
    """A stand-in mirror that records whether it was closed."""

    opened: list = []

    def __init__(self, run_dir, config, fail_open=False, fail_close=False):
        if fail_open:
            raise OSError("cannot open")
        self.closed, self.fail_close = False, fail_close
        _Writer.opened.append(self)

    def write(self, record):
        pass

    def close(self):
        self.closed = True
        if self.fail_close:
            raise OSError("cannot close")


def test_open_all_closes_what_it_opened_when_a_later_writer_fails(tmp_path, monkeypatch):
    _Writer.opened = []
    monkeypatch.setitem(loggers.LOGGERS, "tensorboard", _Writer)
    monkeypatch.setitem(loggers.LOGGERS, "wandb", lambda run_dir, config: _Writer(run_dir, config, fail_open=True))
    with pytest.raises(OSError, match="cannot open"):
        loggers.open_all(["tensorboard", "wandb"], tmp_path, {})
    assert len(_Writer.opened) == 1 and _Writer.opened[0].closed


def test_metrics_log_closes_its_mirrors_when_the_file_cannot_be_opened(tmp_path):
    mirrors = [_Writer(tmp_path, {}), _Writer(tmp_path, {})]
    (tmp_path / "metrics.jsonl").mkdir()  # a folder where the file should be
    with pytest.raises(CheckpointError, match="cannot read"):
        metrics.MetricsLog(tmp_path / "metrics.jsonl", 0, mirrors=mirrors)
    assert all(m.closed for m in mirrors)


def test_metrics_log_close_closes_every_mirror_even_if_one_raises(tmp_path):
    mirrors = [_Writer(tmp_path, {}, fail_close=True), _Writer(tmp_path, {})]
    log = metrics.MetricsLog(tmp_path / "metrics.jsonl", 0, mirrors=mirrors)
    with pytest.raises(OSError, match="cannot close"):
        log.close()
    assert all(m.closed for m in mirrors)
