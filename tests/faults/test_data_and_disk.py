"""Dataset builds killed or cut short, mismatched test sets, read-only folders, full disks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from jaxdp.cli import main as cli
from jaxdp.tasks.builder import build
from jaxdp.tasks.dataset import save
from jaxdp.training.run import restore_model
from tests.faults.common import TASK, TRAIN, finish, jaxdp, mount_tmpfs, one_line, session_processes, steps, train_run

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


def test_a_killed_dataset_build_leaves_no_process_behind(tmp_path):
    cmd = [
        "data",
        "--task",
        "lis",
        "--size",
        "40",
        "--train",
        "60000",
        "--test",
        "100",
        "--workers",
        "2",
        "--out",
        str(tmp_path / "d"),
    ]
    proc = jaxdp(*cmd, fault="dataset.chunk@6", start_new_session=True)
    rc, _, _ = finish(proc)
    assert rc == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(proc.pid) == [], "generator processes outlived the build"


def test_a_build_cut_between_its_splits_finishes_on_rerun(tmp_path):
    cmd = ["data", "--task", "ed", "--size", "3", "--train", "300", "--test", "30", "--out", str(tmp_path / "d")]
    assert finish(jaxdp(*cmd, fault="dataset.between_splits@1"))[0] == -signal.SIGKILL
    assert (tmp_path / "d" / "train.npz").exists() and not (tmp_path / "d" / "test.npz").exists()
    before = (tmp_path / "d" / "train.npz").read_bytes()
    rc, out, err = finish(jaxdp(*cmd))
    assert rc == 0, err
    assert (tmp_path / "d" / "train.npz").read_bytes() == before and (tmp_path / "d" / "test.npz").exists()


def test_a_test_set_of_another_seed_is_refused(data, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(data / "train.npz", mixed / "train.npz")
    save(build(TASK, 512, 32, seed=2, progress=False)[1], mixed / "test.npz")
    assert cli([*TRAIN, "--data", str(mixed), "--out", str(tmp_path / "run")]) == 2
    assert "may overlap the training set" in one_line(capsys.readouterr().err)


def test_a_read_only_run_folder_is_one_line(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    if os.geteuid() != 0:
        run.chmod(0o555)
    elif reason := mount_tmpfs(run, "ro,size=64k"):  # root writes through permissions, not a ro mount
        pytest.skip(f"as root a read-only folder needs a read-only mount, and mount failed: {reason}")
    try:
        rc, _, err = train_run(data, run)
        assert rc == 2 and "cannot" in one_line(err) and str(run) in err
        assert list(run.iterdir()) == []
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(run)], capture_output=True)


def test_a_full_disk_during_a_save_keeps_the_earlier_checkpoints(data, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if reason := mount_tmpfs(disk, "size=600k"):
        pytest.skip(f"cannot mount a small tmpfs here (needs CAP_SYS_ADMIN): {reason}")
    try:
        rc, _, err = train_run(data, disk / "run")
        if rc == 0:
            pytest.skip("the run fitted in the tmpfs; nothing to test")
        assert rc == 2 and "error:" in one_line(err)
        good = steps(disk / "run")
        if good:
            restore_model(disk / "run")  # what is left is readable
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
