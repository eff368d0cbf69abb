"""Compiled DP models (Theorems 4.1, B.3, B.4, Proposition 5.4) run through jaxdp's blocks:
every generated token of ED equals the textbook DP's, for hundreds of random inputs.

Precision: float64 for all; float32 suffices for standard, local (Prop. 5.4) and sparse up to
L = 197, and for linear only up to L = 82 (at L = 197 its AGG averages lose the slots).
Teacher forcing (`predict`) checks every position in one pass; since the blocks are causal,
exact next tokens everywhere is exact generation (induction), which `generate` then shows
directly, token by token through `Block.step` and by recomputing the prefix."""

import numpy as np
import pytest

from constructions.compile import COMPILERS, compile_dp, dims, generate_reference
from constructions.dp import edit_distance, lcs

pytestmark = [pytest.mark.usefixtures("x64"), pytest.mark.integration]
FORMS = {
    "standard": [{}],
    "local": [dict(form="masked"), dict(form="blocked")],
    "sparse": [dict(form="masked"), dict(form="blocked")],
    "linear": [dict(form="quadratic"), dict(form="chunked", chunk_size=16), dict(form="scan")],
}
CASES = [(c, f) for c in COMPILERS for f in FORMS[c]]


def _spec(compiler, n, kind="ed"):
    return (edit_distance if kind == "ed" else lcs)(n, n, local=compiler == "local")


def _teacher_forced_mismatches(compiler, n, count, seed, dtype="float64", kind="ed", **forms):
    spec = _spec(compiler, n, kind)
    model = compile_dp(spec, compiler)
    a, b = spec.random_inputs(np.random.default_rng(seed), count)
    ref = generate_reference(spec, a, b)
    pred = model.predict(ref, dtype=dtype, **forms)
    P = spec.prompt_len
    return int((pred[:, P - 1 : -1] != ref[:, P:]).any(axis=-1).sum())


def _every_form_cases():
    """(compiler, forms, n, count) for every form at L = 38 and L = 82; L = 82 for all but the
    standard compiler is in `-m slow` (L = 197 is checked by the decoding tests below)."""
    for n, count in [(4, 200), (8, 100)]:
        for compiler, forms in CASES:
            slow = [pytest.mark.slow] if n == 8 and compiler != "standard" else []
            name = f"{n}-{count}-{compiler}-{'-'.join(map(str, forms.values())) or 'dense'}"
            yield pytest.param(compiler, forms, n, count, marks=slow, id=name)


@pytest.mark.parametrize("compiler,forms,n,count", list(_every_form_cases()))
def test_every_next_token_is_exact_in_every_form(compiler, forms, n, count):
    assert _teacher_forced_mismatches(compiler, n, count, seed=n, **forms) == 0


#: at L = 197 the sparse and linear decodings take 10-12 s each: -m slow; the default run decodes
#: them at L = 82 and checks every next token of both at L = 197 (float32, teacher-forced, above)
DECODE_CASES = [
    ("standard", 13),
    ("local", 13),
    ("sparse", 8),
    ("linear", 8),
    *(pytest.param(c, 13, marks=pytest.mark.slow) for c in ("sparse", "linear")),
]


@pytest.mark.parametrize("compiler,n", DECODE_CASES)
def test_decoding_token_by_token_reproduces_the_chain(compiler, n):
    spec = _spec(compiler, n)
    assert spec.length == {8: 82, 13: 197}[n]
    a, b = spec.random_inputs(np.random.default_rng(7), 200)
    out = compile_dp(spec, compiler).generate(a, b, mode="decode")
    ref = generate_reference(spec, a, b)
    np.testing.assert_array_equal(out, ref)
    assert [int(o[-1, 4]) for o in out[:20]] == [spec.answer(x, y) for x, y in zip(a[:20], b[:20])]


@pytest.mark.parametrize("compiler", COMPILERS)
def test_recomputing_the_prefix_each_step_reproduces_the_chain(compiler):
    spec = _spec(compiler, 3)
    a, b = spec.random_inputs(np.random.default_rng(8), 20)
    out = compile_dp(spec, compiler).generate(a, b, mode="recompute", **FORMS[compiler][-1])
    np.testing.assert_array_equal(out, generate_reference(spec, a, b))


@pytest.mark.parametrize("compiler", ["standard", "local", "sparse"])
def test_float32_is_enough_at_L_197(compiler):
    assert _teacher_forced_mismatches(compiler, 13, 40, seed=9, dtype="float32") == 0


def test_linear_float32_is_enough_at_L_82_not_at_L_197():
    assert _teacher_forced_mismatches("linear", 8, 60, seed=10, dtype="float32") == 0
    assert _teacher_forced_mismatches("linear", 13, 60, seed=10, dtype="float32") > 0


@pytest.mark.parametrize("compiler", COMPILERS)
def test_lcs_compiles_too(compiler):
    assert _teacher_forced_mismatches(compiler, 5, 100, seed=11, kind="lcs") == 0


def test_hidden_sizes_follow_the_theorems():
    standard = {dims(edit_distance(n), "standard") for n in range(3, 60, 7)}
    local = {dims(edit_distance(n, local=True), "local") for n in range(3, 60, 7)}
    assert len(standard) == len(local) == 1  # constant D (Theorem 4.1, Proposition 5.4)
    for compiler in ("sparse", "linear"):  # D = O(√L): grows, but D/√L stays bounded
        D = [dims(edit_distance(n), compiler) for n in (8, 32, 128)]
        L = [edit_distance(n).length for n in (8, 32, 128)]
        assert D[0] < D[1] < D[2]
        ratio = [d / np.sqrt(x) for d, x in zip(D, L)]
        assert max(ratio) / min(ratio) < 3.0


def test_generate_refuses_an_unknown_mode():
    spec = edit_distance(2, 2)
    with pytest.raises(ValueError, match="mode 'fast' is not one of"):
        compile_dp(spec, "standard").generate(*spec.random_inputs(np.random.default_rng(0), 1), mode="fast")


@pytest.mark.slow
@pytest.mark.parametrize(
    "compiler,forms", CASES, ids=[f"{c}-{'-'.join(map(str, f.values())) or 'dense'}" for c, f in CASES]
)
def test_every_next_token_is_exact_at_L_197_in_every_form(compiler, forms):
    assert _teacher_forced_mismatches(compiler, 13, 300, seed=13, **forms) == 0
