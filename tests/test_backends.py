"""Every backend agrees with the NumPy reference on every option combination."""

import numpy as np
import pytest

import fastopt
from _tolerance import assert_same_bits
from optcases import all_cases, case_id

CASES = all_cases()
SHAPES = [(1,), (7,), (1000,), (4099,), (13, 17)]
OTHERS = [b for b in fastopt.available_backends() if b != "numpy"]
STEPS = 120


def run(cls, kw, backend, dtype, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    opt = cls(params, backend=backend, **kw)
    for _k in range(steps):
        # The gradient depends on the parameters, so that any difference feeds back.
        grads = [(0.5 * p + rng.standard_normal(p.shape)).astype(dtype) for p in params]
        opt.step(grads)
    return params, opt


@pytest.mark.skipif(not OTHERS, reason="only the numpy backend is available")
@pytest.mark.parametrize("backend_", OTHERS)
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_backend_matches_reference(case, backend_, dtype):
    cls, kw = case
    ref, ref_opt = run(cls, kw, "numpy", dtype)
    got, got_opt = run(cls, kw, backend_, dtype)
    for i, (r, g) in enumerate(zip(ref, got)):
        assert g.dtype == dtype
        assert_same_bits(g, r, f"param {i}")
    for name, st in ref_opt.state.items():
        for key, r in st.items():
            assert_same_bits(got_opt.state[name][key], r, f"state {name} {key}")


def test_trajectories_move(dtype):
    """Guard against a vacuous agreement: every optimizer really changes the parameters."""
    for cls, kw in CASES:
        rng = np.random.default_rng(1)
        start = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        got, _ = run(cls, kw, "numpy", dtype, steps=3)
        for s, g in zip(start, got):
            assert not np.array_equal(s, g), case_id((cls, kw))


@pytest.mark.parametrize("fn", fastopt.kernels.__all__)
def test_functional_kernels_match_across_backends(fn, backend, dtype):
    rng = np.random.default_rng(3)
    n = 4099

    def run_kernel(be):
        r = np.random.default_rng(4)
        p = r.standard_normal(n).astype(dtype)
        s1, s2, s3 = (np.zeros_like(p) for _ in range(3))
        mu = [1.0]
        carried = (0.0, 1.0)  # ASGD's eta and mu
        for t in range(1, 51):
            g = (p + r.standard_normal(n)).astype(dtype)
            if fn == "sgd":
                fastopt.kernels.sgd(
                    p,
                    g,
                    s1,
                    step=t,
                    lr=0.01,
                    momentum=0.9,
                    nesterov=True,
                    weight_decay=0.01,
                    backend=be,
                )
            elif fn == "adagrad":
                fastopt.kernels.adagrad(p, g, s1, step=t, lr=0.1, lr_decay=0.01, backend=be)
            elif fn == "rmsprop":
                fastopt.kernels.rmsprop(
                    p, g, s1, s2, s3, lr=0.01, centered=True, momentum=0.3, backend=be
                )
            elif fn == "adam":
                fastopt.kernels.adam(
                    p, g, s1, s2, s3, step=t, lr=0.01, amsgrad=True, weight_decay=0.1, backend=be
                )
            elif fn == "adamw":
                fastopt.kernels.adamw(p, g, s1, s2, step=t, lr=0.01, backend=be)
            elif fn == "adamax":
                fastopt.kernels.adamax(p, g, s1, s2, step=t, lr=0.01, weight_decay=0.1, backend=be)
            elif fn == "nadam":
                mu[0] = fastopt.kernels.nadam(
                    p,
                    g,
                    s1,
                    s2,
                    step=t,
                    mu_product=mu[0],
                    lr=0.01,
                    weight_decay=0.1,
                    momentum_decay=0.01,
                    backend=be,
                )
            elif fn == "radam":
                fastopt.kernels.radam(
                    p,
                    g,
                    s1,
                    s2,
                    step=t,
                    lr=0.01,
                    weight_decay=0.1,
                    decoupled_weight_decay=True,
                    backend=be,
                )
            elif fn == "rprop":
                fastopt.kernels.rprop(
                    p, g, s1, s2, step=t, etas=(0.4, 1.3), step_sizes=(1e-4, 0.05), backend=be
                )
            elif fn == "asgd":
                eta, mu_ = carried
                carried = fastopt.kernels.asgd(
                    p,
                    g,
                    s1,
                    step=t,
                    eta=eta,
                    mu=mu_,
                    lambd=0.01,
                    t0=20,
                    weight_decay=0.01,
                    backend=be,
                )
            else:
                fastopt.kernels.adadelta(p, g, s1, s2, lr=0.5, weight_decay=0.01, backend=be)
        return p

    del rng
    ref, got = run_kernel("numpy"), run_kernel(backend)
    assert_same_bits(got, ref, fn)


def test_functional_kernel_equals_optimizer(backend, dtype):
    """kernels.adam with explicit state reproduces the Adam optimizer bit for bit."""
    rng = np.random.default_rng(5)
    p1 = rng.standard_normal(257).astype(dtype)
    p2 = p1.copy()
    m, v = np.zeros_like(p1), np.zeros_like(p1)
    opt = fastopt.Adam([p2], lr=0.02, weight_decay=0.1, backend=backend)
    for t in range(1, 31):
        g = rng.standard_normal(257).astype(dtype)
        fastopt.kernels.adam(p1, g, m, v, step=t, lr=0.02, weight_decay=0.1, backend=backend)
        opt.step([g])
    assert np.array_equal(p1, p2)
    assert np.array_equal(m, opt.state[0]["exp_avg"])


@pytest.mark.parametrize("fn", ["adamax", "nadam", "radam", "adadelta", "rprop", "asgd"])
def test_functional_kernel_equals_optimizer_new(fn, backend, dtype):
    """kernels.<fn> with explicit state reproduces the optimizer class bit for bit (the
    carried group state too: NAdam's mu_product, ASGD's eta and mu)."""
    cls = {
        "adamax": fastopt.Adamax,
        "nadam": fastopt.NAdam,
        "radam": fastopt.RAdam,
        "adadelta": fastopt.Adadelta,
        "rprop": fastopt.Rprop,
        "asgd": fastopt.ASGD,
    }[fn]
    kw = {
        "rprop": dict(lr=0.02, etas=(0.4, 1.3), step_sizes=(1e-3, 0.05)),
        "asgd": dict(lr=0.02, weight_decay=0.1, lambd=0.01, t0=10),
    }.get(fn, dict(lr=0.02, weight_decay=0.1))
    mu = 1.0
    eta_mu = (0.0, 1.0)
    rng = np.random.default_rng(5)
    p1 = rng.standard_normal(257).astype(dtype)
    p2 = p1.copy()
    s1, s2 = np.zeros_like(p1), np.zeros_like(p1)
    opt = cls([p2], backend=backend, **kw)
    for t in range(1, 31):
        g = rng.standard_normal(257).astype(dtype)
        if fn == "nadam":
            mu = fastopt.kernels.nadam(p1, g, s1, s2, step=t, mu_product=mu, backend=backend, **kw)
        elif fn == "asgd":
            eta, mu_ = eta_mu
            eta_mu = fastopt.kernels.asgd(p1, g, s1, step=t, eta=eta, mu=mu_, backend=backend, **kw)
        else:
            getattr(fastopt.kernels, fn)(p1, g, s1, s2, step=t, backend=backend, **kw)
        opt.step([g])
        group = opt.state_dict()["param_groups"][0]
        if fn == "nadam":
            assert group["mu_product"] == [mu]
        if fn == "asgd":
            assert (group["eta"], group["mu"]) == ([eta_mu[0]], [eta_mu[1]])
    assert np.array_equal(p1, p2)
    for s, name in zip((s1, s2), opt._spec.state_names):
        assert np.array_equal(s, opt.state[0][name])


def test_float32_stays_float32(backend):
    """Hyperparameters must not promote float32 state to float64 (and no copy is updated)."""
    p = np.ones(5, np.float32)
    opt = fastopt.Adam([p], lr=0.1, backend=backend)
    opt.step([np.full(5, 0.5, np.float32)])
    assert p.dtype == np.float32 and opt.state[0]["exp_avg"].dtype == np.float32
    # Adam's first step moves every element by lr (m / sqrt(v) = sign(g) after correction).
    np.testing.assert_allclose(p, 1 - 0.1, rtol=1e-6)


@pytest.mark.skipif("numba" not in fastopt.available_backends(), reason="numba not installed")
@pytest.mark.parametrize("case", CASES[::3], ids=[case_id(c) for c in CASES[::3]])
def test_numba_parallel_path_matches_reference(case, dtype, monkeypatch):
    """Arrays above PARALLEL_MIN_SIZE take Numba's prange twin: it must agree too."""
    import fastopt.backends.numba as nb

    monkeypatch.setattr(nb, "PARALLEL_MIN_SIZE", 1000)
    cls, kw = case
    ref, _ = run(cls, kw, "numpy", dtype, steps=20)
    got, _ = run(cls, kw, "numba", dtype, steps=20)
    for i, (r, g) in enumerate(zip(ref, got)):
        assert_same_bits(g, r, f"param {i}")


def test_same_bits_catches_one_ulp_and_signed_zero(dtype):
    """The comparison above is not vacuous: one ulp, or -0.0 for 0.0, is a failure."""
    ref = np.linspace(-1, 1, 9).astype(dtype)
    assert_same_bits(ref.copy(), ref)
    bumped = ref.copy()
    bumped[3] = np.nextafter(bumped[3], dtype(2))
    with pytest.raises(AssertionError, match=r"1 of 9 elements differ.*1 ulp"):
        assert_same_bits(bumped, ref)
    zero = np.zeros(2, dtype)
    with pytest.raises(AssertionError):
        assert_same_bits(-zero, zero)
    nan = np.array([np.nan, 1.0], dtype)
    assert_same_bits(nan.copy(), nan)
    with pytest.raises(AssertionError, match="dtype"):
        assert_same_bits(ref.astype(np.float16), ref)
