"""Dataset building, the loss mask, and files that refuse to be misread."""

import json
import zipfile

import numpy as np
import pytest

from jaxdp import tasks
from jaxdp.tasks import builder
from jaxdp.tasks import dataset as ds
from jaxdp.tasks.dataset import DatasetError


def prompts(d):
    return [bytes(d.tokens[i, : d.prompt_len[i]]) for i in range(len(d))]


@pytest.fixture(scope="module")
def lis_sets():
    return builder.build(tasks.get("lis", 6), 3000, 500, seed=5, progress=False)


def test_counts_dedup_and_disjoint(lis_sets):
    train, test = lis_sets
    assert (len(train), len(test)) == (3000, 500)
    assert len(set(prompts(train))) == 3000 and len(set(prompts(test))) == 500
    assert not set(prompts(train)) & set(prompts(test))


def test_rows_are_solved_examples_and_mask_covers_targets(lis_sets):
    train, _ = lis_sets
    task, mask = train.task, train.loss_mask
    for i in range(0, 3000, 97):
        ex = train.example(i)
        assert ex.target == task.solve(ex.prompt)
        row = task.decode(train.tokens[i])
        assert [t for t, m in zip(row, mask[i]) if m] == ex.target  # CoT, answer and <eos>
        assert not mask[i, : len(ex.prompt)].any() and set(row[len(ex.tokens) :]) <= {tasks.PAD}


def test_deterministic_and_independent_of_workers(lis_sets):
    again = builder.build(tasks.get("lis", 6), 3000, 500, seed=5, workers=2, progress=False)
    for a, b in zip(lis_sets, again):
        assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.length, b.length)
    other = builder.build(tasks.get("lis", 6), 3000, 500, seed=6, progress=False)
    assert not np.array_equal(other[0].tokens, lis_sets[0].tokens)


def test_arithmetic_mixture_in_train_only():
    task = tasks.get("arithmetic", 3)
    train, test = builder.build(task, 4000, 400, seed=0, progress=False)
    ops = lambda d: {sum(t in "+-*/" for t in d.example(i).prompt) for i in range(len(d))}  # noqa: E731
    assert ops(train) == {1, 2, 3} and ops(test) == {3}
    assert train.tokens.shape == (4000, task.max_len)
    plain, _ = builder.build(tasks.get("arithmetic", 3, under=False), 4000, 0, seed=0, progress=False)
    assert ops(plain) == {3}


@pytest.mark.integration
def test_too_few_distinct_examples_is_an_error_not_a_hang():
    with pytest.raises(DatasetError, match=r"arithmetic\(1.*only \d+ distinct examples.*5000 asked for"):
        builder.build(tasks.get("arithmetic", 1, under=False), 5000, 0, progress=False)


def test_bad_counts():
    with pytest.raises(DatasetError, match="train must be a non-negative integer, got -1"):
        builder.build(tasks.get("lis", 5), -1, 10, progress=False)


# --- files -----------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path, lis_sets):
    return ds.save(lis_sets[0], tmp_path / "train.npz")


def test_round_trip(saved, lis_sets):
    loaded = ds.load(saved, tasks.get("lis", 6), "train")
    assert np.array_equal(loaded.tokens, lis_sets[0].tokens) and loaded.seed == 5
    assert loaded.task == tasks.get("lis", 6)


def test_mismatched_task_or_split(saved):
    with pytest.raises(DatasetError, match=r"holds lis\(6.*expected lis\(7"):
        ds.load(saved, tasks.get("lis", 7))
    with pytest.raises(DatasetError, match="holds split 'train', expected test"):
        ds.load(saved, split="test")


@pytest.mark.parametrize("where", [0.3, 0.6, 0.9])
def test_flipped_bytes_are_detected(saved, where):
    data = bytearray(saved.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="corrupt|not a jaxdp|out of range|outside|misplaced"):
        ds.load(saved)


def test_truncated_file(saved):
    saved.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="truncated or not a jaxdp-dataset file"):
        ds.load(saved)


def _rewrite(path, header=None, tokens=None):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if header:
        arrays["header"] = np.array(json.dumps({**json.loads(str(arrays["header"])), **header}))
    if tokens is not None:
        arrays["tokens"] = tokens
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    "header,message",
    [
        ({"version": 99}, "version 99, this jaxdp reads version 1"),
        ({"format": "other"}, "not a jaxdp-dataset file"),
        ({"task": "sorting"}, "cannot make"),
        ({"vocab": ["<pad>"]}, "vocabulary or max_len differ"),
        ({"count": 7}, r"tokens is uint16\[3000, 16\], expected uint16\[7, 16\]"),
    ],
)
def test_header_problems(saved, header, message):
    _rewrite(saved, header=header)
    with pytest.raises(DatasetError, match=message):
        ds.load(saved)


def test_out_of_vocab_token(saved, lis_sets):
    tokens = lis_sets[0].tokens.copy()
    tokens[10, 2] = len(lis_sets[0].task.vocab) + 3
    _rewrite(saved, tokens=tokens)
    with pytest.raises(DatasetError, match=r"token id \d+ is outside the vocabulary of lis\(6"):
        ds.load(saved)


def test_not_a_zip_and_missing(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(DatasetError, match="not a readable .npz archive"):
        ds.load(tmp_path / "x.npz")
    with pytest.raises(DatasetError, match="no dataset file here"):
        ds.load(tmp_path / "missing.npz")


def test_build_to_dir_reuses_refuses_and_forces(tmp_path):
    task = tasks.get("ed", 3)
    _, _, built = builder.build_to_dir(task, tmp_path, 200, 20, seed=1, progress=False)
    _, _, again = builder.build_to_dir(task, tmp_path, 200, 20, seed=1, progress=False)
    assert built and not again
    with pytest.raises(DatasetError, match="already holds ed"):
        builder.build_to_dir(task, tmp_path, 300, 20, seed=1, progress=False)
    with zipfile.ZipFile(tmp_path / "test.npz", "a") as z:  # corrupt: an extra member
        z.writestr("junk.npy", b"x")
    with pytest.raises(DatasetError, match="not a jaxdp-dataset file"):
        builder.build_to_dir(task, tmp_path, 200, 20, seed=1, progress=False)
    train, _, built = builder.build_to_dir(task, tmp_path, 300, 20, seed=1, progress=False, force=True)
    assert built and len(ds.load(tmp_path / "train.npz")) == 300 and not list(tmp_path.glob("*.partial"))


@pytest.mark.integration
@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_the_largest_size_a_task_accepts_builds_in_bounded_time_and_memory(name, tmp_path):
    """`python -m jaxdp data` at MAX_SIZE, a few examples, in 1 GiB of address space: one line,
    exit 0. LIS(4096) used to take 3 GB (a redraw recursion that kept every pass alive)."""
    import shlex
    import subprocess
    import sys
    import time

    size = tasks.TASKS[name].MAX_SIZE
    command = [
        sys.executable,
        "-m",
        "jaxdp",
        "data",
        "--task",
        name,
        "--size",
        str(size),
        "--train",
        "4",
        "--test",
        "2",
        "--out",
        str(tmp_path / "data"),
    ]
    started = time.monotonic()
    run = subprocess.run(
        ["bash", "-c", f"ulimit -v {2**20} && exec {shlex.join(command)}"], capture_output=True, text=True, timeout=300
    )  # 2**20 KiB: 1 GiB of address space
    assert run.returncode == 0 and len(run.stdout.strip().splitlines()) == 1, run.stderr[-2000:]
    assert time.monotonic() - started < 120
    train = ds.load(tmp_path / "data" / "train.npz")
    assert len(train) == 4 and train.task.size == size
    assert train.task.solve(train.example(0).prompt) == list(train.example(0).target)
