"""Shared pieces of the fault-injection tests (see tests/faults/__init__.py): the run they
interrupt, how to start it in a subprocess, how to compare it with the uninterrupted run, and
ways to damage a checkpoint."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from jaxdp import tasks
from jaxdp.training.run import restore_model

logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # this process's own reads of damaged files

ROOT = Path(__file__).resolve().parents[2]
TASK = tasks.get("lis", 4, value_range=8)
#: 16 steps an epoch, 64 in all; a metrics line every 4 steps, a checkpoint every 10 and at the end
TRAIN = [
    "train",
    "--task",
    "lis",
    "--size",
    "4",
    "--option",
    "value_range=8",
    "--mixer",
    "sparse",
    "--dim",
    "16",
    "--layers",
    "1",
    "--epochs",
    "4",
    "--warmup-epochs",
    "1",
    "--batch-size",
    "32",
    "--dropout",
    "0.1",
    "--lr",
    "3e-3",
    "--eval-examples",
    "8",
    "--checkpoint-every",
    "10",
    "--set",
    "log_every=4",
    "--quiet",
]


def jaxdp(*args, fault: str | None = None, compile_cache: bool = True, **kwargs) -> subprocess.Popen:
    """`python -m jaxdp ARGS` with failpoint `fault`; `compile_cache=False` compiles afresh
    (without the session's persistent cache, see tests/conftest.py)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **({"JAXDP_FAULT": fault} if fault else {})}
    env.pop("JAXDP_FAULT", None) if fault is None else None
    env.pop("JAX_COMPILATION_CACHE_DIR", None) if not compile_cache else None
    return subprocess.Popen(
        [sys.executable, "-m", "jaxdp", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def train_run(data: Path, out: Path, fault: str | None = None) -> tuple[int, str, str]:
    return finish(jaxdp(*TRAIN, "--data", str(data), "--out", str(out), fault=fault))


def params(run: Path) -> list[np.ndarray]:
    model, _ = restore_model(run)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def metrics(run: Path) -> list[tuple]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["epoch"], r["loss"], r["lr"]) for r in lines]


def result(run: Path) -> dict:
    return {k: v for k, v in json.loads((run / "result.json").read_text()).items() if k != "train_seconds"}


def assert_same_as_reference(run: Path, reference: Path) -> None:
    for a, b in zip(params(run), params(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    assert metrics(run) == metrics(reference), "a metrics step is duplicated, missing or different"
    assert result(run) == result(reference)


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def steps(run: Path) -> list[int]:
    return sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())


# ---------------------------------------------------------------------- damage


def overwrite(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 8] = b"\xff" * 8
    path.write_bytes(bytes(raw))


def flip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def raw_arrays(state_dir: Path) -> list[np.ndarray]:
    """A checkpoint's arrays read by plain orbax, without jaxdp's checks."""
    import orbax.checkpoint as ocp

    here = jax.sharding.SingleDeviceSharding(jax.devices()[0])  # it may have been saved on more devices
    with ocp.StandardCheckpointer() as checkpointer:
        saved = checkpointer.metadata(state_dir.absolute()).item_metadata
        target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here), saved)
        return [np.asarray(x) for x in jax.tree.leaves(checkpointer.restore(state_dir.absolute(), target))]


def array_file(step_dir: Path, damage) -> Path:
    """A data file of the checkpoint whose damage plain orbax would not survive unchanged (OCDBT
    keeps old, unreferenced nodes beside the live ones): the biggest such file."""
    pristine = raw_arrays(step_dir / "state")
    for candidate in sorted(step_dir.rglob("d/*"), key=lambda p: -p.stat().st_size):
        trial = step_dir.parent.parent / "trial"
        shutil.copytree(step_dir, trial)
        damage(trial / candidate.relative_to(step_dir))
        try:
            changed = any(not np.array_equal(a, b) for a, b in zip(raw_arrays(trial / "state"), pristine))
        except Exception:  # unreadable: damage that matters
            changed = True
        shutil.rmtree(trial)
        if changed:
            return candidate
    raise AssertionError(f"no data file of {step_dir} matters")


def mount_tmpfs(folder: Path, options: str) -> str | None:
    """Mount a tmpfs at `folder`; the reason it could not be mounted, or None."""
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True
    )
    return None if mount.returncode == 0 else (mount.stderr.strip() or "mount failed")


def session_processes(sid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: the session id
            out.append(int(stat.parent.name))
    return out


SWEEP = [
    "-m",
    "experiments.fig1",
    "--preset",
    "tiny",
    "--tasks",
    "lis",
    "--sizes",
    "4",
    "--dims",
    "8",
    "--mixers",
    "standard",
    "linear",
    "--set",
    "epochs=1",
    "--set",
    "train_examples=256",
    "--set",
    "test_examples=16",
    "--set",
    "eval_examples=16",
    "--set",
    "batch_size=64",
    "--quiet",
]


def sweep(out: Path, *args, fault: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "JAXDP_FAULT"}
    env.update({"JAX_PLATFORMS": "cpu", **({"JAXDP_FAULT": fault} if fault else {})})
    return subprocess.Popen(
        [sys.executable, *SWEEP, "--out", str(out), "--data-root", str(out / "data"), *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
