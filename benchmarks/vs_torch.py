"""jaxdp against a PyTorch twin of its model on the same machine, in one run: training tokens/s
and greedy-decoding examples/s, interleaved, medians.

    pip install -e ".[bench]"          # torch==2.13.0+cpu, a CPU-only wheel
    python benchmarks/vs_torch.py      # 14-20 minutes on 2 cores
    python benchmarks/vs_torch.py --quick
    JAXDP_KEEP_HOST_MEMORY=0 python benchmarks/vs_torch.py     # jaxdp with glibc's default malloc

jaxdp runs with the host memory XLA frees kept for the next step (``JAXDP_KEEP_HOST_MEMORY=1``,
`jaxdp.runtime.host_memory`, opt-in in the library) unless the variable is set: every shape timed here
has per-device step temporaries over glibc's 32 MB mmap threshold, the regime it is for. The
header line says which setting ran; torch, in the same process, runs under the same malloc.

The twin (`TorchDecoder`) is written here from jaxdp's architecture (docs/models.md): token
embedding + sinusoidal positions → LayerNorm → dropout → pre-LN blocks (softmax attention with
dropout on the probabilities, GeLU-tanh FFN, dropout on both residual branches) → LayerNorm →
head. It is checked before timing: the same parameter count, and the same logits for jaxdp's
weights to 1e-5. jaxdp is timed through its real training step
(`jaxdp.training.step.make_train_step` on `train`'s data mesh) and its real decoding
(`jaxdp.evaluation.decode.generate`), with one jax device per core as jaxdp's commands set it
(`jaxdp.runtime.devices`; ``JAX_NUM_CPU_DEVICES=1`` for one device); torch through AdamW with
weight decay on matrices only, eager and `torch.compile`d, and through a plain KV cache and the full re-forward of every
prefix that the Feng et al. benchmark decodes with. Run it on a quiet machine: torch's OpenMP
threads slow down by an order of magnitude when another process shares the cores.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdp import tasks
from jaxdp.args import Parser, int_at_least
from jaxdp.evaluation import decode
from jaxdp.models import ModelConfig, Transformer, sinusoids
from jaxdp.runtime import host_memory
from jaxdp.runtime.devices import replicate, use_cpu_cores_for_command
from jaxdp.tasks.builder import build
from jaxdp.training.batches import data_mesh, put_batch
from jaxdp.training.protocol import TrainConfig
from jaxdp.training.step import TrainState, init_state, make_train_step

TRAIN_SHAPES = [(64, 84, 64), (128, 84, 64), (256, 224, 32), (128, 508, 16)]  # (D, L, batch)
DECODE_SETTINGS = [("lis", 40, 64), ("lis", 40, 256), ("ed", 12, 64)]  # (task, size, batch)


def torch_twin():
    """The PyTorch model class, defined here so that importing this module needs no torch."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, D, H, p):
            super().__init__()
            self.H, self.p = H, p
            self.attn_norm, self.ffn_norm = nn.LayerNorm(D, eps=1e-5), nn.LayerNorm(D, eps=1e-5)
            self.query, self.key, self.value, self.out = (nn.Linear(D, D) for _ in range(4))
            self.fc1, self.fc2 = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)
            self.drop = nn.Dropout(p)

        def heads(self, x):
            B, L, D = x.shape
            return (f(x).view(B, L, self.H, D // self.H).transpose(1, 2) for f in (self.query, self.key, self.value))

        def attend(self, q, k, v, mask):
            scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(-1, -2)
            probs = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
            return nn.functional.dropout(probs, self.p, self.training) @ v

        def merge(self, o):
            B, H, L, K = o.shape
            return self.out(o.transpose(1, 2).reshape(B, L, H * K))

        def ffn(self, h):
            return h + self.drop(self.fc2(nn.functional.gelu(self.fc1(self.ffn_norm(h)), approximate="tanh")))

        def forward(self, x, mask):
            q, k, v = self.heads(self.attn_norm(x))
            return self.ffn(x + self.drop(self.merge(self.attend(q, k, v, mask))))

        def step(self, x, cache, pos):
            """One token at `pos` against a preallocated cache [B, H, T, K] × 2, reading 0..pos."""
            q, k, v = self.heads(self.attn_norm(x))
            cache[0][:, :, pos : pos + 1], cache[1][:, :, pos : pos + 1] = k, v
            keep = torch.ones(1, pos + 1, dtype=torch.bool)
            o = self.attend(q, cache[0][:, :, : pos + 1], cache[1][:, :, : pos + 1], keep)
            return self.ffn(x + self.merge(o))

    class TorchDecoder(nn.Module):
        def __init__(self, cfg: ModelConfig):
            super().__init__()
            D = cfg.dim
            self.embed = nn.Embedding(cfg.vocab_size, D)
            self.register_buffer("positions", torch.tensor(sinusoids(cfg.max_len, D), dtype=torch.float32))
            self.embed_norm, self.final_norm = nn.LayerNorm(D, eps=1e-5), nn.LayerNorm(D, eps=1e-5)
            self.drop = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList([Block(D, cfg.num_heads, cfg.dropout) for _ in range(cfg.num_layers)])
            self.head = nn.Linear(D, cfg.vocab_size)

        def forward(self, tokens):
            L = tokens.shape[1]
            x = self.drop(self.embed_norm(self.embed(tokens) + self.positions[:L]))
            mask = torch.ones(L, L, dtype=torch.bool).tril()
            for block in self.blocks:
                x = block(x, mask)
            return self.head(self.final_norm(x))

        def step(self, tokens_B, caches, pos):
            x = self.embed_norm(self.embed(tokens_B[:, None]) + self.positions[pos])
            for block, cache in zip(self.blocks, caches):
                x = block.step(x, cache, pos)
            return self.head(self.final_norm(x))[:, 0]

    return TorchDecoder


def copy_weights(torch_model, jax_model: Transformer) -> None:
    """jaxdp's parameters into the twin (nnx kernels are [in, out], torch weights [out, in])."""
    import torch

    params = nnx.to_pure_dict(nnx.state(jax_model, nnx.Param))
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731

    def linear(mod, p):
        mod.weight.data, mod.bias.data = t(p["kernel"]).T.contiguous(), t(p["bias"])

    def norm(mod, p):
        mod.weight.data, mod.bias.data = t(p["scale"]), t(p["bias"])

    torch_model.embed.weight.data = t(params["embed"]["embedding"])
    norm(torch_model.embed_norm, params["embed_norm"])
    norm(torch_model.final_norm, params["final_norm"])
    linear(torch_model.head, params["head"])
    for i, block in enumerate(torch_model.blocks):
        p = params["blocks"][i]
        norm(block.attn_norm, p["attn_norm"])
        norm(block.ffn_norm, p["ffn_norm"])
        for name in ("query", "key", "value", "out"):
            linear(getattr(block, name), p["attn"][name])
        linear(block.fc1, p["ffn"]["fc1"])
        linear(block.fc2, p["ffn"]["fc2"])


def check_twin(cfg: ModelConfig) -> None:
    """Same parameter count and the same logits for the same weights (eval mode), to 1e-5."""
    import torch

    jax_model = Transformer(cfg, rngs=nnx.Rngs(0))
    jax_model.eval()
    twin = torch_twin()(cfg).eval()
    copy_weights(twin, jax_model)
    n_jax = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(jax_model, nnx.Param)))
    n_torch = sum(p.numel() for p in twin.parameters())
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, size=(2, min(cfg.max_len, 40)))
    with torch.no_grad():
        ours = twin(torch.tensor(tokens)).numpy()
    theirs = np.asarray(jax_model(jnp.asarray(tokens, jnp.int32)))
    err = float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-9))
    assert n_jax == n_torch, (n_jax, n_torch)
    assert err < 1e-5, f"the twin's logits differ by {err:.2e}"


def train_model(D: int, L: int) -> ModelConfig:
    """The model every training comparison times: standard attention, dropout 0.1."""
    return ModelConfig(mixer="standard", dim=D, max_len=L, vocab_size=24, dropout=0.1)


def shape(text: str) -> tuple[int, int, int]:
    """An argparse type for the benchmarks' ``--shape D,L,batch``: three positive integers."""
    try:
        D, L, B = (int(x) for x in text.split(","))
    except ValueError:
        D = L = B = 0
    if min(D, L, B) < 1:
        raise argparse.ArgumentTypeError(f"expected D,L,batch as three positive integers, got {text!r}")
    return D, L, B


def batch(cfg: ModelConfig, B: int, L: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(2, cfg.vocab_size, size=(B, L)).astype(np.int32)
    return tokens, np.full(B, L // 4, np.int32), np.full(B, L, np.int32)


def jax_trainer(
    cfg: ModelConfig, batch_size: int, *, optimizer=None, compiler_options: dict | None = None, devices=None
):
    """`train`'s step on `train`'s data-parallel mesh (one device per core after `use_cpu_cores`).
    For ablations (`benchmarks/step_ablations.py`): `optimizer` replaces AdamW, `compiler_options`
    (XLA debug options) are passed to the step's compile, `devices` replaces the mesh's."""
    train_config = TrainConfig(epochs=1, batch_size=batch_size, warmup_epochs=0, schedule="constant", lr=1e-4)
    graphdef, tx, state = init_state(cfg, train_config, steps_per_epoch=1000)
    if optimizer is not None:
        tx, state = optimizer, TrainState(state.params, optimizer.init(state.params), state.rest)
    mesh = data_mesh(batch_size, devices)
    step = make_train_step(graphdef, tx)
    holder = {"state": replicate(state, mesh)}

    def run(tokens, prompt_len, length):
        arrays = put_batch((tokens, prompt_len, length), mesh)
        if "compiled" not in holder:
            holder["compiled"] = step.lower(holder["state"], *arrays).compile(compiler_options=compiler_options)
        holder["state"], loss = holder["compiled"](holder["state"], *arrays)
        return loss

    return run


def torch_trainer(cfg: ModelConfig, compiled: bool):
    import torch

    model = torch_twin()(cfg).train()
    forward = torch.compile(model) if compiled else model
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=1e-4, betas=(0.9, 0.999)
    )

    def run(tokens, prompt_len, length):
        tokens_t = torch.from_numpy(tokens).long()
        logits = forward(tokens_t)[:, :-1]
        pos = torch.arange(tokens.shape[1])[None, 1:]
        mask = (pos >= torch.from_numpy(prompt_len)[:, None]) & (pos < torch.from_numpy(length)[:, None])
        losses = torch.nn.functional.cross_entropy(
            logits.reshape(-1, cfg.vocab_size), tokens_t[:, 1:].reshape(-1), reduction="none"
        )
        loss = (losses * mask.reshape(-1)).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return run


def median_seconds(fns: dict, args, steps: int, rounds: int, warmup_s: float = 0.0) -> dict[str, float]:
    """Interleaved: each round times `steps` calls of every function in turn; medians per call.
    Each function first runs twice (compile) and then for `warmup_s` seconds: jaxdp's host heap
    grows for its first tens of steps before each step reuses it (`jaxdp.runtime.host_memory`), and a
    training run's thousands of steps see the settled rate."""
    for fn in fns.values():
        for _ in range(2):
            float(fn(*args))
        start = time.perf_counter()
        while time.perf_counter() - start < warmup_s:
            float(fn(*args))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                out = fn(*args)
            _ = float(out)  # wait for the last step
            times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(t) for name, t in times.items()}


def train_table(shapes, steps: int, rounds: int, compiled: bool, warmup_s: float) -> str:
    lines = [
        "| train step, tokens/s (dropout 0.1) | jaxdp | torch eager | torch.compile "
        "| jaxdp / eager | jaxdp / compile |",
        "|---|---|---|---|---|---|",
    ]
    for D, L, B in shapes:
        cfg = train_model(D, L)
        check_twin(cfg)
        fns = {"jaxdp": jax_trainer(cfg, B), "eager": torch_trainer(cfg, False)}
        if compiled:
            fns["compile"] = torch_trainer(cfg, True)
        s = median_seconds(fns, batch(cfg, B, L), steps, rounds, warmup_s)
        tok = {k: B * L / v for k, v in s.items()}
        comp = f"{tok['compile']:,.0f}" if compiled else "–"
        ratio = f"{tok['jaxdp'] / tok['compile']:.2f}" if compiled else "–"
        lines.append(
            f"| D {D}, L {L}, batch {B} | {tok['jaxdp']:,.0f} | {tok['eager']:,.0f} | {comp} | "
            f"{tok['jaxdp'] / tok['eager']:.2f} | {ratio} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


def torch_greedy(twin, tokens: np.ndarray, prompt_len: np.ndarray, full: bool) -> np.ndarray:
    """Greedy decoding as jaxdp does it (each row's prompt fed, then argmax), with a KV cache or
    by re-running the whole prefix every step (`full`)."""
    import torch

    B, T = tokens.shape
    buf = torch.from_numpy(np.where(np.arange(T)[None] < prompt_len[:, None], tokens, 0)).long()
    P0 = int(prompt_len.min())
    plen = torch.from_numpy(prompt_len)
    with torch.no_grad():
        if full:
            for pos in range(P0, T):
                nxt = twin(buf[:, :pos])[:, -1].argmax(-1)
                buf[:, pos] = torch.where(plen > pos, buf[:, pos], nxt)
            return buf.numpy()
        H, K = twin.blocks[0].H, twin.embed.weight.shape[1] // twin.blocks[0].H
        caches = [(torch.zeros(B, H, T, K), torch.zeros(B, H, T, K)) for _ in twin.blocks]
        for pos in range(T - 1):
            logits = twin.step(buf[:, pos], caches, pos)
            if pos + 1 >= P0:
                buf[:, pos + 1] = torch.where(plen > pos + 1, buf[:, pos + 1], logits.argmax(-1))
        return buf.numpy()


def decode_table(settings, rounds: int, full_rounds: int) -> str:
    lines = [
        "| greedy decoding, examples/s, D 128, whole CoT | jaxdp decode state | torch KV cache | torch full re-forward "
        "| jaxdp / KV cache | jaxdp / full |",
        "|---|---|---|---|---|---|",
    ]
    for name, size, B in settings:
        task = tasks.get(name, size)
        _, test = build(task, 16, B, seed=0, progress=False)
        cfg = ModelConfig(mixer="standard", dim=128, max_len=task.max_len, vocab_size=len(task.vocab))
        model = Transformer(cfg, rngs=nnx.Rngs(0))
        model.eval()
        twin = torch_twin()(cfg).eval()
        copy_weights(twin, model)
        tokens, plen = test.tokens.astype(np.int32), test.prompt_len
        never = len(task.vocab)  # no <eos>: every row writes the whole CoT, in both
        runs = {  # timed within this iteration: the closures see its values
            "jaxdp": lambda: decode.generate(model, tokens, plen, eos_id=never, batch_size=B),  # noqa: B023
            "kv": lambda: torch_greedy(twin, tokens, plen, full=False),  # noqa: B023
            "full": lambda: torch_greedy(twin, tokens, plen, full=True),  # noqa: B023
        }
        runs["jaxdp"]()  # compile
        assert (runs["jaxdp"]() == runs["kv"]()).mean() > 0.99, "jaxdp and the twin decode different tokens"
        times = {k: [] for k in runs}
        for r in range(rounds):
            for k, fn in runs.items():
                if k == "full" and r >= full_rounds:
                    continue
                start = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - start)
        ex = {k: B / statistics.median(v) for k, v in times.items()}
        lines.append(
            f"| {name.upper()}({size}), L {task.max_len - 1}, batch {B} | {ex['jaxdp']:,.1f} | {ex['kv']:,.1f} | "
            f"{ex['full']:,.2f} | {ex['jaxdp'] / ex['kv']:.2f} | {ex['jaxdp'] / ex['full']:.1f} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


def start(prog: str) -> None:
    """What the benchmarks do before jax starts: keep freed host memory unless the caller chose
    (their shapes are the regime it is for; module docstring), then one jax device per core."""
    os.environ.setdefault(host_memory.VARIABLE, "1")
    use_cpu_cores_for_command(prog)


def host_memory_setting() -> str:
    """The malloc setting this process runs under, for a table's header line."""
    return "host memory kept (JAXDP_KEEP_HOST_MEMORY=1)" if host_memory.is_kept() else "glibc's default malloc"


def main() -> None:
    p = Parser(prog="python benchmarks/vs_torch.py", description=__doc__)
    p.add_argument("--quick", action="store_true", help="the first shape and setting only, fewer rounds")
    p.add_argument("--rounds", type=int_at_least(1), default=7, help="interleaved rounds per measurement (default 7)")
    p.add_argument("--steps", type=int_at_least(1), default=5, help="training steps per round (default 5)")
    p.add_argument(
        "--warmup",
        type=int_at_least(0),
        default=12,
        metavar="SECONDS",
        help="seconds each training step runs before it is timed (default 12)",
    )
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile on a CPU)")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-decode", action="store_true")
    args = p.parse_args()
    import torch

    print(
        f"# {platform.node()}, {platform.processor() or platform.machine()}, jax {jax.__version__} "
        f"({jax.default_backend()}, {jax.device_count()} devices), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), float32, "
        f"{host_memory_setting()}"
    )
    shapes = TRAIN_SHAPES[:1] if args.quick else TRAIN_SHAPES
    settings = DECODE_SETTINGS[:1] if args.quick else DECODE_SETTINGS
    rounds = 3 if args.quick else args.rounds
    if not args.skip_train:
        print("\n" + train_table(shapes, args.steps, rounds, not args.no_compile, args.warmup))
    if not args.skip_decode:
        print("\n" + decode_table(settings, rounds, full_rounds=1))


if __name__ == "__main__":
    start("python benchmarks/vs_torch.py")
    main()
