"""`LineDP`: a 1-D DP over one string with fixed look-backs, written against the `DPSpec`
protocol to show that the compilers need no grid (docs/paper.md §2, eq. (9)).

For a string s_1 … s_n of values 1..V and a gap K ≥ 2,

    dp(i) = max(dp(i − 1), dp(i − K) + s_i),   dp(i) = 0 for i ≤ 0,

the largest sum of a subset of s whose chosen indices lie at least K apart (K = 2: no two
neighbours). It has the look-backs h_1(i) = i − 1 and h_2(i) = i − K and one input g_1(i) = i.
Tokens ``(i, i², val, end)``: the prompt is s (in `val`) and a separator of state 0; CoT token
i holds dp(i); the last token (end = 1) the answer dp(n). L = 2n + 2. The state is one
variable, so there is no row or column and no first-row rule. Each step reads its letter
n tokens back, so the chain is m-local with m = n + 1 ≈ L/2: the ``local`` and ``window``
compilers solve it with a window of about half the sequence.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from constructions.dp import Fetch, Target
from constructions.program import Net
from constructions.residual import Layout


@dataclasses.dataclass(frozen=True)
class LineDP:
    """dp(i) = max(dp(i − 1), dp(i − K) + s_i) over s ∈ [1, V]^n."""

    n: int
    K: int = 2
    V: int = 9

    def __post_init__(self):
        for field, low in (("n", 2), ("K", 2), ("V", 1)):
            value = getattr(self, field)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"LineDP.{field}: must be an integer >= {low}, got {value!r}")
        if self.K > self.n + 1:
            raise ValueError(f"LineDP.K: must be at most n + 1 = {self.n + 1}, got {self.K}")

    # --- the token format -------------------------------------------------------------------
    fields = ("val",)
    width = 4
    state_size = 2
    flag_names = ("early",)  # [i' ≤ K]: dp(i' − K) is the border 0

    @property
    def name(self) -> str:
        return f"line(n={self.n}, K={self.K})"

    @property
    def state_vars(self) -> dict[str, tuple[int, int]]:
        return {"i": (0, 1)}

    @property
    def prompt_len(self) -> int:
        return self.n + 1

    @property
    def length(self) -> int:
        return 2 * self.n + 2

    @property
    def m(self) -> int:
        """The farthest look-back: s_i' lies n + 1 positions before token i'."""
        return self.n + 1

    @property
    def value_bound(self) -> int:
        return max(self.V, self.n * self.V, (self.n + 1) ** 2)

    def token_layout(self) -> list[tuple[str, int]]:
        return [("state", 2), ("val", 1), ("end", 1)]

    # --- the reference (slow path, independent of every net) -------------------------------
    def table(self, s) -> np.ndarray:
        """dp[i] for 0 ≤ i ≤ n by the textbook loop."""
        dp = np.zeros(self.n + 1, np.int64)
        for i in range(1, self.n + 1):
            dp[i] = max(dp[i - 1], (dp[i - self.K] if i >= self.K else 0) + s[i - 1])
        return dp

    def prompt(self, s) -> np.ndarray:
        out = np.zeros((self.prompt_len, self.width))
        out[: self.n, 2] = s  # the separator (the last row) is all zeros: state 0, dp(0) = 0
        return out

    def tokens(self, s) -> np.ndarray:
        out = np.zeros((self.length, self.width))
        out[: self.prompt_len] = self.prompt(s)
        dp, i = self.table(s), np.arange(1, self.n + 1)
        out[self.prompt_len : -1, :3] = np.stack([i, i * i, dp[1:]], axis=1)
        out[-1, 2:] = dp[-1], 1.0
        return out

    def answer(self, s) -> int:
        return int(self.table(s)[-1])

    def random_inputs(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray]:
        return (rng.integers(1, self.V + 1, size=(count, self.n)),)

    # --- what the next token needs ---------------------------------------------------------
    fetches = (Fetch("back", ("val",)), Fetch("s", ("val",)))

    def target_rule(self, fetch: str) -> Target:
        """dp(i' − K) sits K − 1 tokens before the current one (k); s_i' at position i'."""
        return {"back": Target(("k", 1 - self.K)), "s": Target(("i", 0))}[fetch]

    def work(self) -> list[tuple[str, int]]:
        return [("Bk", 1), ("dp", 1)]

    @property
    def gate_scale(self) -> float:
        return 8.0 * self.value_bound

    # --- the nets ---------------------------------------------------------------------------
    def next_state(self, layout: Layout) -> Net:
        """i' = i + 1 with its square; fin = [i = n] (the next token is the answer)."""
        net = Net(layout, ["state"], ["nstate", "fin"])
        i, i2 = ("state", 0), ("state", 1)
        net.affine(("nstate", 0), {i: 1.0}, bias=1.0)
        net.affine(("nstate", 1), {i2: 1.0, i: 2.0}, bias=1.0)
        net.relu("fin", {i: 1.0}, bias=-(self.n - 1.0))
        return net

    def flags(self, net: Net) -> None:
        """early = [i' ≤ K] = ReLU(K + 1 − i') − ReLU(K − i') at integers i' ≥ 1."""
        net.relu("early", {("nstate", 0): -1.0}, bias=self.K + 1.0)
        net.relu("early", {("nstate", 0): -1.0}, bias=float(self.K), coef=-1.0)

    def transition(self, layout: Layout, got: dict[tuple[str, str], tuple[str, int]]) -> list[Net]:
        """Bk = dp(i' − K) (0 while early); dp = val + ReLU(Bk + s_i' − val), val = dp(i' − 1);
        then the next token, or after i = n the answer."""
        G = self.gate_scale
        back = Net(layout, [got[("back", "val")][0], "early"], ["Bk"])
        back.choose("Bk", "early", ({}, 0.0), {got[("back", "val")]: 1.0}, G=G)
        best = Net(layout, ["val", "Bk", got[("s", "val")][0]], ["dp"])
        best.affine("dp", {"val": 1.0})
        best.relu("dp", {"Bk": 1.0, got[("s", "val")]: 1.0, "val": -1.0})
        out = Net(layout, ["nstate", "dp", "val", "fin"], ["out"])
        for t in range(2):
            out.choose(("out", t), "fin", ({}, 0.0), {("nstate", t): 1.0}, G=G)
        out.choose(("out", 2), "fin", ({"val": 1.0}, 0.0), {"dp": 1.0}, G=G)
        out.affine(("out", 3), {"fin": 1.0})
        return [back, best, out]
