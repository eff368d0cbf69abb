"""One jax device per CPU core (`jaxdp.runtime.devices`): the count the commands set, the meshes that
split a batch over it, and that splitting changes no decoded token and no loss."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from jaxdp.runtime import devices
from jaxdp.training.run import restore_model

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    return {**env, "JAX_PLATFORMS": "cpu", **extra}


def test_batch_devices_takes_the_most_that_divide_the_batch():
    eight = list(range(8))
    assert devices.batch_devices(64, eight) == eight
    assert devices.batch_devices(12, eight) == eight[:6]
    assert devices.batch_devices(7, eight) == eight[:7]
    assert devices.batch_devices(11, eight) == [0]
    assert devices.batch_devices(9, [0, 1]) == [0]
    assert devices.batch_devices(10, [0, 1]) == [0, 1]


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2"])
def test_use_cpu_cores_refuses_a_bad_count(bad):
    with pytest.raises(ValueError, match="count must be a positive int"):
        devices.use_cpu_cores(bad)


def test_a_count_set_by_the_user_wins(monkeypatch):
    monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "1")
    assert devices.cpu_devices_set_by_user()
    assert devices.use_cpu_cores() is None
    monkeypatch.delenv("JAX_NUM_CPU_DEVICES")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
    assert devices.use_cpu_cores() is None


def test_after_jax_has_started_the_default_changes_nothing(monkeypatch):
    import jax

    jax.numpy.ones(1).block_until_ready()  # the backends have started in this process
    for name in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS"):
        monkeypatch.delenv(name, raising=False)
    if jax.config.jax_num_cpu_devices == -1:
        assert devices.use_cpu_cores() is None
    with pytest.raises(RuntimeError, match="before backends are initialized"):
        devices.use_cpu_cores(2)


def test_the_command_line_gets_one_device_per_core():
    code = "import runpy, sys; sys.argv = ['jaxdp', '--help']; runpy.run_module('jaxdp', run_name='__main__')"
    probe = f"import atexit, jax; atexit.register(lambda: print('DEVICES', jax.device_count())); {code}"
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = min(devices.available_cores(), devices.MAX_DEFAULT_CPU_DEVICES)
    assert f"DEVICES {expected}" in proc.stdout


def test_split_batches_decode_the_same_tokens_and_train_the_same_losses(tmp_path):
    """On two CPU devices: `generate` splits a batch's rows over both (and decodes what one device
    decodes, token for token); `train`'s default mesh uses both when they divide the batch and one
    when they do not, and the loss curves agree to float rounding; a run trained on two devices
    restores on one (this process) with the same parameters."""
    script = textwrap.dedent(f"""
        import json, jax, numpy as np
        from flax import nnx
        from jaxdp.evaluation import decode
        from jaxdp import tasks
        from jaxdp.models import ModelConfig, Transformer
        from jaxdp.tasks.builder import build
        from jaxdp.training.protocol import TrainConfig
        from jaxdp.training.batches import data_mesh
        from jaxdp.training.run import train
        assert jax.device_count() == 2
        task = tasks.get("lis", 4, value_range=8)
        train_set, test_set = build(task, 256, 24, seed=1, progress=False)
        mc = ModelConfig(dim=16, num_layers=2, max_len=task.max_len, vocab_size=len(task.vocab), dropout=0.1)
        model = Transformer(mc, rngs=nnx.Rngs(0))
        graphdef, state = nnx.split(model)
        place, _ = decode.row_placement(state, 24)
        assert len(place(np.zeros((24, 3), np.int32)).sharding.device_set) == 2
        eos = task.vocab.index("<eos>")
        split = decode.generate(model, test_set.tokens, test_set.prompt_len, eos_id=eos, batch_size=8)
        one = decode.generate(model, test_set.tokens, test_set.prompt_len, eos_id=eos, batch_size=8,
                              devices=jax.devices()[:1])
        assert (split == one).all()
        assert data_mesh(32).size == 2 and data_mesh(33).size == 1
        tc = TrainConfig(epochs=1, batch_size=32, lr=3e-3, warmup_epochs=0.5, log_every=1, checkpoint_every=100)
        curves = []
        for devices in (None, jax.devices()[:1]):
            out = "{tmp_path}/" + ("default" if devices is None else "one")
            train(out, task, mc, tc, train_set, None, progress=False, devices=devices)
            curves.append([json.loads(l)["loss"] for l in open(out + "/metrics.jsonl")])
        from jaxdp.training.run import restore_model
        trained, _ = restore_model("{tmp_path}/default")
        np.savez("{tmp_path}/params.npz", *jax.tree.leaves(nnx.state(trained, nnx.Param)))
        print(json.dumps(curves))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(JAX_NUM_CPU_DEVICES="2"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    split, one = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(split) == len(one) == 8
    np.testing.assert_allclose(split, one, rtol=1e-5)
    # the checkpoints written on two devices restore on this process's one
    restored, _ = restore_model(tmp_path / "default")
    saved = np.load(tmp_path / "params.npz")
    for i, leaf in enumerate(jax.tree.leaves(nnx.state(restored, nnx.Param))):
        np.testing.assert_array_equal(np.asarray(leaf), saved[f"arr_{i}"])
