"""`DPSpec`: a dynamic program of the form eq. (9)–(10) in the regression setting (docs/paper.md §2),
with every function the paper assumes an MLP for (Assumptions B.1, B.2) written as a ReLU net
over named residual subspaces (`constructions.program.Net`). `DPSpec` is the protocol every
compiler (`constructions.compilers`) reads; `GridDP` (here) and `LineDP` (`constructions.line`)
implement it.

A spec says:

* the **tokens**: every position carries one vector ``(state, fields…, end)``. The prompt is
  the input symbols, then a separator whose state is the one before the first DP state; each
  CoT token holds a DP state, its value dp and whatever the format carries along; the last token
  (end = 1) holds the answer u. The model emits the next vector and we round it (the readout).
* the **state**: `state_size` numbers, each variable with its square (`state_vars`), so that a
  softmax head can score −(t − j)² for a target position t that is affine in a variable;
* the **next-state map** (`next_state`, Assumption B.2), 0/1 `flags` of the next state, and
  the **positions** of what it needs, h_k(i) and g_j(i) (`fetches`, `target_rule`), each
  ``variable + offset`` of the current position k or of a next-state variable;
* the **transition** f and the answer u (`transition`), from the fetched fields.

How the fetched fields arrive (COPY by softmax, by sparse attention, by linear AGG) is the
compiler's business (`constructions.compile`), not the spec's.

`GridDP` realises the family of two-string DPs over a grid (i, j) ∈ [1, N] × [1, M] in
row-major order, K = 3 (dp(i−1, j), dp(i, j−1), dp(i−1, j−1)) and J = 2 (a_i, b_j):
Edit Distance with the benchmark's costs (`edit_distance`) and the longest common subsequence
(`lcs`). `local=True` is the m-locality variant (Definition 5.3): the CoT carries the letters
it needs — a_{i+j−1} along the anti-diagonal, a_i along the row, b_j down the column — so every
token depends only on the last m = N + M + 1 tokens, against m ≈ L for the plain format.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Protocol, runtime_checkable

import numpy as np

from constructions.program import Net
from constructions.residual import Layout

LETTERS = string.ascii_lowercase
STATE = ("i", "j", "i2", "j2")  # the state encoding: (i, j, i², j²); the separator is (1, 0)


@dataclasses.dataclass(frozen=True)
class Fetch:
    """One value the next token needs from an earlier one: its name and the fields to copy."""

    name: str
    fields: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a fetch points for the next state: ``at`` = (variable, offset), the position
    variable + offset, variable "k" (the current position) or one of `state_vars` (of the next
    state); while that state's variable `early[0]` is at most `early[1]`, ``instead`` (the first
    row of a grid, where the row above is the border)."""

    at: tuple[str, int]
    instead: tuple[str, int] | None = None
    early: tuple[str, int] | None = None


@runtime_checkable
class DPSpec(Protocol):
    """What a compiler needs of a DP of the form eq. (9)–(10). Token vectors are laid out as
    `token_layout()`: ("state", `state_size`), one space per field, ("end", 1); `width` in all."""

    name: str
    width: int
    length: int  # L: the prompt, the CoT, the answer
    prompt_len: int
    m: int  # the locality (Definition 5.3); L − 1 when there is none
    value_bound: int  # a bound on every token entry
    fields: tuple[str, ...]
    fetches: tuple[Fetch, ...]
    state_size: int  # the state's numbers (the first entries of a token)
    flag_names: tuple[str, ...]  # the 0/1 flags of the next state that `flags` writes
    state_vars: dict[str, tuple[int, int]]  # variable -> (its index, its square's) in the state

    def token_layout(self) -> list[tuple[str, int]]: ...

    def work(self) -> list[tuple[str, int]]: ...  # the transition's scratch subspaces

    def prompt(self, *inputs) -> np.ndarray: ...

    def tokens(self, *inputs) -> np.ndarray: ...  # the textbook chain [L, width]

    def answer(self, *inputs) -> int: ...

    def random_inputs(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]: ...

    def target_rule(self, fetch: str) -> Target: ...

    def next_state(self, layout: Layout) -> Net: ...  # reads "state", writes "nstate", "fin"

    def flags(self, net: Net) -> None: ...  # reads "nstate", writes `flag_names`

    def transition(self, layout: Layout, got: dict[tuple[str, str], tuple[str, int]]) -> list[Net]: ...


@dataclasses.dataclass(frozen=True)
class GridDP:
    """A DP over the grid [1, N] × [1, M] (row-major) of two strings a (length N), b (length M).

    `kind` "ed": dp(i, j) = min(dp(i−1, j) + delete, dp(i, j−1) + insert,
    dp(i−1, j−1) + replace·[a_i ≠ b_j]), border dp(i, 0) = i, dp(0, j) = j (the benchmark's);
    `kind` "lcs": dp(i, j) = dp(i−1, j−1) + 1 if a_i = b_j else max(dp(i−1, j), dp(i, j−1)),
    border 0. The answer is u(dp(N, M)) = dp(N, M). Letters are the integers 1..26.
    """

    kind: str
    N: int
    M: int
    local: bool = False
    insert: int = 2
    delete: int = 2
    replace: int = 3

    def __post_init__(self):
        if self.kind not in ("ed", "lcs"):
            raise ValueError(f"GridDP.kind: {self.kind!r} is not one of 'ed', 'lcs'")
        for field in ("N", "M"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                raise ValueError(f"GridDP.{field}: must be a positive integer, got {getattr(self, field)!r}")
        if self.M < 2 or self.N > self.M:
            raise ValueError(
                f"GridDP: needs 2 <= M and N <= M (the first string the shorter, as in the "
                f"benchmark), got N={self.N}, M={self.M}"
            )

    # --- the token format -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"{self.kind}{'_local' if self.local else ''}(N={self.N}, M={self.M})"

    @property
    def fields(self) -> tuple[str, ...]:
        """Token fields besides the state and the end flag. Plain: `val` is a letter in the
        prompt and dp in the CoT. Local: the prompt's letters sit in `c` (a) and `bj` (b)."""
        return ("val", "c", "ai", "bj") if self.local else ("val",)

    @property
    def width(self) -> int:
        return len(STATE) + len(self.fields) + 1

    def token_layout(self) -> list[tuple[str, int]]:
        return [("state", len(STATE)), *[(f, 1) for f in self.fields], ("end", 1)]

    @property
    def prompt_len(self) -> int:
        return self.N + self.M + 1

    @property
    def length(self) -> int:
        """L: prompt, N·M DP states, the answer."""
        return self.prompt_len + self.N * self.M + 1

    @property
    def m(self) -> int:
        """The locality (Definition 5.3): the farthest a token reaches back for what it needs."""
        return self.N + self.M + 1 if self.local else self.length - 1

    def position(self, i, j):
        """The position (1-indexed) of DP state (i, j)."""
        return self.prompt_len + (np.asarray(i) - 1) * self.M + np.asarray(j)

    @property
    def value_bound(self) -> int:
        """A bound on every token entry: letters, dp values, the state's squares."""
        return max(26, 2 * self.N + self.M + 2, (self.M + 1) ** 2)

    # --- the reference (slow path, independent of every net) -------------------------------
    def table(self, a, b) -> np.ndarray:
        """dp[i][j] for 0 ≤ i ≤ N, 0 ≤ j ≤ M by the textbook loop."""
        dp = np.zeros((self.N + 1, self.M + 1), np.int64)
        for i in range(self.N + 1):
            for j in range(self.M + 1):
                if i == 0 or j == 0:
                    dp[i, j] = (i + j) if self.kind == "ed" else 0
                elif self.kind == "ed":
                    dp[i, j] = min(
                        dp[i - 1, j] + self.delete,
                        dp[i, j - 1] + self.insert,
                        dp[i - 1, j - 1] + self.replace * (a[i - 1] != b[j - 1]),
                    )
                else:
                    dp[i, j] = dp[i - 1, j - 1] + 1 if a[i - 1] == b[j - 1] else max(dp[i - 1, j], dp[i, j - 1])
        return dp

    def _columns(self) -> dict[str, int]:
        return {name: len(STATE) + t for t, name in enumerate(self.fields)}

    def prompt(self, a, b) -> np.ndarray:
        """The prompt [N + M + 1, width]: the letters of a and b, then the separator."""
        N, M, col = self.N, self.M, self._columns()
        out = np.zeros((self.prompt_len, self.width))
        out[np.arange(N), col["c" if self.local else "val"]] = a
        out[N + np.arange(M), col["bj" if self.local else "val"]] = b
        out[N + M, :4] = (1, 0, 1, 0)  # the separator: the state before (1, 1)
        return out

    def tokens(self, a, b) -> np.ndarray:
        """The whole sequence [L, width] for letters a (N) and b (M): eq. (10) as vectors."""
        N, M, col = self.N, self.M, self._columns()
        out = np.zeros((self.length, self.width))
        out[: self.prompt_len] = self.prompt(a, b)
        dp = self.table(a, b)
        for i in range(1, N + 1):
            for j in range(1, M + 1):
                row = out[self.position(i, j) - 1]
                row[:4] = (i, j, i * i, j * j)
                row[col["val"]] = dp[i, j]
                if self.local:
                    row[col["c"]] = a[i + j - 2] if i + j - 1 <= N else 0
                    row[col["ai"]], row[col["bj"]] = a[i - 1], b[j - 1]
        out[-1, col["val"]], out[-1, -1] = dp[N, M], 1.0
        return out

    def answer(self, a, b) -> int:
        return int(self.table(a, b)[self.N, self.M])

    def random_inputs(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` pairs (a [count, N], b [count, M]) of letter codes 1..26: per pair an alphabet
        of 3–10 letters; b is random (probability 0.4) or a after random edits, cut or padded
        to M — the benchmark's mix of near and far pairs at a fixed shape."""
        A = np.zeros((count, self.N), np.int64)
        Bm = np.zeros((count, self.M), np.int64)
        for s in range(count):
            alphabet = rng.choice(26, size=int(rng.integers(3, 11)), replace=False) + 1
            a = list(rng.choice(alphabet, self.N))
            if rng.random() < 0.4:
                b = list(rng.choice(alphabet, self.M))
            else:
                b = a[:]
                for _ in range(int(rng.integers(1, self.N + 1))):
                    kind, at = int(rng.integers(3)), int(rng.integers(len(b) + 1))
                    if kind == 0 and len(b) > 1:
                        del b[min(at, len(b) - 1)]
                    elif kind == 1:
                        b[min(at, len(b) - 1)] = rng.choice(alphabet)
                    else:
                        b.insert(at, rng.choice(alphabet))
                b = (b + list(rng.choice(alphabet, self.M)))[: self.M]
            A[s], Bm[s] = a, b
        return A, Bm

    # --- what the next token needs ---------------------------------------------------------
    @property
    def fetches(self) -> tuple[Fetch, ...]:
        """h_1 = (i−1, j), h_3 = (i−1, j−1) (h_2 = (i, j−1) is the current token itself),
        g_1 = a_i, g_2 = b_j; the local format finds the letters in recent tokens."""
        if self.local:
            return (Fetch("up", ("val", "bj")), Fetch("diag", ("val",)), Fetch("c", ("c",)))
        return (Fetch("up", ("val",)), Fetch("diag", ("val",)), Fetch("a", ("val",)), Fetch("b", ("val",)))

    @property
    def state_vars(self) -> dict[str, tuple[int, int]]:
        return {"i": (0, 2), "j": (1, 3)}

    @property
    def state_size(self) -> int:
        return len(STATE)

    @property
    def flag_names(self) -> tuple[str, ...]:
        return ("r1", "c1", "cM")

    def target_rule(self, fetch: str) -> Target:
        """`target` for rows after the first, and for the first row where it differs."""
        later, first = self.target(fetch, False), self.target(fetch, True)
        return Target(later) if later == first else Target(later, first, early=("i", 1))

    def target(self, fetch: str, first_row: bool) -> tuple[str, int]:
        """Where fetch `fetch` for the next state (i', j') points, from the current position k:
        (variable, offset) meaning variable + offset, variable ∈ {"k", "i", "j"} (of the next
        state). Row 1 and later rows may differ."""
        N, M = self.N, self.M
        table = {
            "up": ("j", N) if (first_row and self.local) else ("k", 1 - M),  # (i'−1, j') or b_j'
            "diag": ("k", -M),  # (i'−1, j'−1)
            "a": ("i", 0),
            "b": ("j", N),
            "c": ("j", 0) if first_row else ("k", 2 - M),  # a_{j'} or (i'−1, j'+1)
        }
        return table[fetch]

    def work(self) -> list[tuple[str, int]]:
        """The transition's scratch subspaces."""
        names = ["U", "Lf", "Din", "ach", "bch", "Dst", "eq", "x1", "x2", "dp"]
        return [(n, 1) for n in names + (["cn"] if self.local else [])]

    @property
    def gate_scale(self) -> float:
        return 8.0 * self.value_bound

    # --- the nets ---------------------------------------------------------------------------
    def next_state(self, layout: Layout) -> Net:
        """Assumption B.2: (i, j) -> (i', j') in row-major order, with squares, and fin =
        [(i, j) = (N, M)] (the next token is the answer). All inputs are integers."""
        N, M = self.N, self.M
        G = 8.0 * (M + 1) ** 2
        net = Net(layout, ["state"], ["nstate", "fin"])
        i, j, i2, j2 = (("state", t) for t in range(4))
        last = {j: 1.0}  # [j ≥ M] is the condition j − M ≥ 0; j ≤ M always
        net.affine(("nstate", 0), {i: 1.0})
        net.gate(("nstate", 0), {}, last, value_bias=1.0, cond_bias=-M, G=G)
        net.affine(("nstate", 1), {j: 1.0}, bias=1.0)
        net.gate(("nstate", 1), {}, last, value_bias=-float(M), cond_bias=-M, G=G)
        net.affine(("nstate", 2), {i2: 1.0})
        net.gate(("nstate", 2), {i: 2.0}, last, value_bias=1.0, cond_bias=-M, G=G)
        net.affine(("nstate", 3), {j2: 1.0, j: 2.0}, bias=1.0)
        net.gate(("nstate", 3), {}, last, value_bias=-float((M + 1) ** 2 - 1), cond_bias=-M, G=G)
        net.relu("fin", {i: 1.0, j: 1.0}, bias=-(N + M - 1.0))
        return net

    def flags(self, net: Net) -> None:
        """r1 = [i' = 1], c1 = [j' = 1], cM = [j' = M] as 0/1 (integer inputs: exact up to A.2)."""
        net.relu("r1", {("nstate", 0): -1.0}, bias=2.0)
        net.relu("c1", {("nstate", 1): -1.0}, bias=2.0)
        net.relu("cM", {("nstate", 1): 1.0}, bias=1.0 - self.M)

    def transition(self, layout: Layout, got: dict[tuple[str, str], tuple[str, int]]) -> list[Net]:
        """Assumption B.1: f and u as ReLU layers. `got[(fetch, field)]` names the residual
        coordinate holding that fetched field. The last layer writes the next token into `out`."""
        return [self._neighbours(layout, got), self._diagonal(layout), *self._recurrence(layout), self._readout(layout)]

    def _neighbours(self, layout: Layout, got) -> Net:
        """U = dp(i'−1, j'), Lf = dp(i', j'−1), Din = dp(i'−1, j'−1) before its first-row border,
        and the letters a_i', b_j' (ach, bch); locally also the letter to carry on (cn)."""
        G, local, own = self.gate_scale, self.local, {f: f for f in self.fields}
        n_i, n_j = ("nstate", 0), ("nstate", 1)
        reads = sorted({g[0] for g in got.values()}) + ["val", "nstate", "r1", "c1", "cM"] + (["ai"] if local else [])
        net = Net(layout, reads, ["U", "Lf", "Din", "ach", "bch"] + (["cn"] if local else []))
        border = 1.0 if self.kind == "ed" else 0.0
        net.choose("U", "r1", ({n_j: border}, 0.0), {got[("up", "val")]: 1.0}, G=G)  # dp(0, j') = j'
        net.choose("Lf", "c1", ({n_i: border}, 0.0), {own["val"]: 1.0}, G=G)  # dp(i', 0) = i'
        net.choose("Din", "c1", ({n_i: border}, -border), {got[("diag", "val")]: 1.0}, G=G)  # dp(i'−1, 0)
        if local:
            c = got[("c", "c")]
            net.choose("ach", "c1", ({c: 1.0}, 0.0), {own["ai"]: 1.0}, G=G)  # a_i' starts each row
            net.affine("bch", {got[("up", "bj")]: 1.0})
            net.affine("cn", {c: 1.0})  # a_{i'+j'−1}; 0 past the end of a (j' = M, i' > 1)
            net.gate("cn", {c: 1.0}, {"cM": 1.0, "r1": -1.0}, cond_bias=-1.0, G=G, coef=-1.0)
        else:
            net.affine("ach", {got[("a", "val")]: 1.0})
            net.affine("bch", {got[("b", "val")]: 1.0})
        return net

    def _diagonal(self, layout: Layout) -> Net:
        """Dst = dp(i'−1, j'−1) with its border, and eq = [a_i' = b_j']."""
        border = 1.0 if self.kind == "ed" else 0.0
        net = Net(layout, ["Din", "nstate", "r1", "ach", "bch"], ["Dst", "eq"])
        net.choose("Dst", "r1", ({("nstate", 1): border}, -border), {"Din": 1.0}, G=self.gate_scale)  # dp(0, j'−1)
        d = {"ach": 1.0, "bch": -1.0}  # [a = b] = 1 − ReLU(d) + ReLU(d − 1) − ReLU(−d) + ReLU(−d − 1)
        net.bias("eq", 1.0)
        net.relu("eq", d, 0.0, -1.0), net.relu("eq", d, -1.0, 1.0)
        net.relu("eq", {k: -w for k, w in d.items()}, 0.0, -1.0)
        net.relu("eq", {k: -w for k, w in d.items()}, -1.0, 1.0)
        return net

    def _recurrence(self, layout: Layout) -> tuple[Net, Net]:
        """dp(i', j') from U, Lf, Dst and eq, in two layers (x1, x2, then dp)."""
        t3 = Net(layout, ["U", "Lf", "Dst", "eq"], ["x1", "x2"])
        t4 = Net(layout, ["x1", "x2"], ["dp"])
        if self.kind == "ed":  # x1 = min(U + del, Lf + ins), x2 = Dst + rep·[a ≠ b]; dp = min(x1, x2)
            t3.affine("x1", {"U": 1.0}, bias=self.delete)
            t3.relu("x1", {"U": 1.0, "Lf": -1.0}, bias=self.delete - self.insert, coef=-1.0)
            t3.affine("x2", {"Dst": 1.0, "eq": -float(self.replace)}, bias=self.replace)
            t4.affine("dp", {"x2": 1.0})
            t4.relu("dp", {"x2": 1.0, "x1": -1.0}, coef=-1.0)
        else:  # x1 = [a = b]·(Dst + 1), x2 = max(U, Lf); dp = max(x1, x2)
            t3.gate("x1", {"Dst": 1.0}, {"eq": 1.0}, value_bias=1.0, cond_bias=-1.0, G=self.gate_scale)
            t3.affine("x2", {"U": 1.0})
            t3.relu("x2", {"Lf": 1.0, "U": -1.0})
            t4.affine("dp", {"x2": 1.0})
            t4.relu("dp", {"x1": 1.0, "x2": -1.0})
        return t3, t4

    def _readout(self, layout: Layout) -> Net:
        """The next token: (i', j', i'², j'², dp, carried letters, 0) or, after (N, M), the answer."""
        G = self.gate_scale
        carried = {"c": "cn", "ai": "ach", "bj": "bch"} if self.local else {}
        net = Net(layout, ["nstate", "dp", "val", "fin"] + list(carried.values()), ["out"])
        for t in range(4):
            net.choose(("out", t), "fin", ({}, 0.0), {("nstate", t): 1.0}, G=G)
        net.choose(("out", 4), "fin", ({"val": 1.0}, 0.0), {"dp": 1.0}, G=G)  # u(dp(N, M)) = dp(N, M)
        for t, name in enumerate(self.fields[1:], start=5):
            net.choose(("out", t), "fin", ({}, 0.0), {carried[name]: 1.0}, G=G)
        net.affine(("out", self.width - 1), {"fin": 1.0})
        return net


def edit_distance(N: int, M: int | None = None, *, local: bool = False) -> GridDP:
    """ED with the benchmark's costs (insert = delete = 2, replace = 3) and border i + j."""
    return GridDP("ed", N, N if M is None else M, local=local)


def lcs(N: int, M: int | None = None, *, local: bool = False) -> GridDP:
    return GridDP("lcs", N, N if M is None else M, local=local)
