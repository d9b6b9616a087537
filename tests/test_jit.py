"""fastopt.jit: the optimizers inside a user's own @numba.njit code, bit-identical to
fastopt.kernels (numpy backend) for every optimizer, float32 and float64, sizes 1, 7, 1000."""

import os
import subprocess
import sys

import numpy as np
import pytest

numba = pytest.importorskip("numba")
import fastopt  # noqa: E402
import fastopt.jit as J  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 5


@numba.njit
def _loop_sgd(w, gs, buf, lr, momentum, dampening, wd, nesterov, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.sgd(
            w,
            gs[t - 1],
            buf,
            step=t,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=wd,
            nesterov=nesterov,
            maximize=maximize,
        )


@numba.njit
def _loop_adagrad(w, gs, s, lr, lr_decay, wd, eps, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.adagrad(
            w,
            gs[t - 1],
            s,
            step=t,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=wd,
            eps=eps,
            maximize=maximize,
        )


@numba.njit
def _loop_rmsprop(w, gs, sq, ga, buf, lr, alpha, eps, wd, momentum, centered, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.rmsprop(
            w,
            gs[t - 1],
            sq,
            ga,
            buf,
            step=t,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=wd,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )


@numba.njit
def _loop_adam(w, gs, m, v, vmax, lr, betas, eps, wd, amsgrad, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.adam(
            w,
            gs[t - 1],
            m,
            v,
            vmax,
            step=t,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=wd,
            amsgrad=amsgrad,
            maximize=maximize,
        )


@numba.njit
def _loop_adamw(w, gs, m, v, vmax, lr, betas, eps, wd, amsgrad, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.adamw(
            w,
            gs[t - 1],
            m,
            v,
            vmax,
            step=t,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=wd,
            amsgrad=amsgrad,
            maximize=maximize,
        )


@numba.njit
def _loop_adamax(w, gs, m, u, lr, betas, eps, wd, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.adamax(
            w,
            gs[t - 1],
            m,
            u,
            step=t,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=wd,
            maximize=maximize,
        )


@numba.njit
def _loop_radam(w, gs, m, v, lr, betas, eps, wd, decoupled, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.radam(
            w,
            gs[t - 1],
            m,
            v,
            step=t,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=wd,
            decoupled_weight_decay=decoupled,
            maximize=maximize,
        )


@numba.njit
def _loop_adadelta(w, gs, v, u, lr, rho, eps, wd, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.adadelta(
            w, gs[t - 1], v, u, step=t, lr=lr, rho=rho, eps=eps, weight_decay=wd, maximize=maximize
        )


@numba.njit
def _loop_rprop(w, gs, prev, ss, lr, etas, step_sizes, maximize):
    for t in range(1, gs.shape[0] + 1):
        J.rprop(
            w,
            gs[t - 1],
            prev,
            ss,
            step=t,
            lr=lr,
            etas=etas,
            step_sizes=step_sizes,
            maximize=maximize,
        )


@numba.njit
def _loop_asgd(w, gs, ax, lr, lambd, alpha, t0, wd, maximize):
    eta, mu = 0.0, 1.0
    for t in range(1, gs.shape[0] + 1):
        eta, mu = J.asgd(
            w,
            gs[t - 1],
            ax,
            step=t,
            eta=eta,
            mu=mu,
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=wd,
            maximize=maximize,
        )
    return eta, mu


@numba.njit
def _loop_defaults(w, gs, m, v):  # every option left at its default
    for t in range(1, gs.shape[0] + 1):
        J.adam(w, gs[t - 1], m, v, step=t)
        J.adamw(w, gs[t - 1], m, v, step=t)


CASES = {
    "sgd": [
        dict(
            lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True, maximize=False
        ),
        dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.0, nesterov=False, maximize=True),
    ],
    "adagrad": [
        dict(lr=0.05, lr_decay=0.01, weight_decay=0.01, eps=1e-10, maximize=False),
        dict(lr=0.05, lr_decay=0.0, weight_decay=0.0, eps=1e-8, maximize=True),
    ],
    "rmsprop": [
        dict(
            lr=0.005,
            alpha=0.9,
            eps=1e-8,
            weight_decay=0.01,
            momentum=0.5,
            centered=True,
            maximize=False,
        ),
        dict(
            lr=0.005,
            alpha=0.99,
            eps=1e-8,
            weight_decay=0.0,
            momentum=0.0,
            centered=False,
            maximize=True,
        ),
    ],
    "adam": [
        dict(lr=0.01, betas=(0.8, 0.95), eps=1e-8, weight_decay=0.05, amsgrad=True, maximize=False),
        dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=True),
    ],
}
CASES["adamw"] = CASES["adam"]
CASES["adamax"] = [
    dict(lr=0.01, betas=(0.8, 0.95), eps=1e-8, weight_decay=0.05, maximize=False),
    dict(lr=0.01, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.0, maximize=True),
]
CASES["radam"] = [  # 8 steps: both sides of rho_t > 5
    dict(
        lr=0.01,
        betas=(0.8, 0.95),
        eps=1e-8,
        weight_decay=0.05,
        decoupled_weight_decay=True,
        maximize=False,
    ),
    dict(
        lr=0.01,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.01,
        decoupled_weight_decay=False,
        maximize=True,
    ),
]
CASES["adadelta"] = [
    dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.01, maximize=False),
    dict(lr=0.5, rho=0.5, eps=1e-3, weight_decay=0.0, maximize=True),
]
CASES["rprop"] = [  # both clamps bind within the steps
    dict(lr=0.01, etas=(0.4, 1.3), step_sizes=(5e-3, 0.015), maximize=False),
    dict(lr=0.02, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=True),
]
NSTATE = {
    "rprop": 2,
    "sgd": 1,
    "adagrad": 1,
    "rmsprop": 3,
    "adam": 3,
    "adamw": 3,
    "adamax": 2,
    "radam": 2,
    "adadelta": 2,
}


def _state_args(name, states, kw):
    """The state arguments of both calls (None where the options do not need one)."""
    if name == "sgd":
        return [states[0] if kw["momentum"] != 0 else None]
    if name == "adagrad":
        return [states[0]]
    if name == "rmsprop":
        return [
            states[0],
            states[1] if kw["centered"] else None,
            states[2] if kw["momentum"] > 0 else None,
        ]
    if name in ("adamax", "radam", "adadelta", "rprop"):
        return [states[0], states[1]]
    return [states[0], states[1], states[2] if kw["amsgrad"] else None]


@pytest.mark.parametrize("n", [1, 7, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(NSTATE))
def test_njit_loop_equals_kernels(name, dtype, n):
    rng = np.random.default_rng(n)
    for kw in CASES[name]:
        w0 = rng.standard_normal(n).astype(dtype)
        gs = rng.standard_normal((STEPS if name != "radam" else 8, n)).astype(dtype)
        s0 = [
            np.abs(rng.standard_normal(n)).astype(dtype) * dtype(0.01) * (name != "rmsprop")
            for _ in range(NSTATE[name])
        ]
        w1, s1 = w0.copy(), [s.copy() for s in s0]
        w2, s2 = w0.copy(), [s.copy() for s in s0]
        globals()[f"_loop_{name}"](w1, gs, *_state_args(name, s1, kw), *kw.values())
        kern = getattr(fastopt.kernels, name)
        for t in range(1, gs.shape[0] + 1):
            kern(w2, gs[t - 1], *_state_args(name, s2, kw), step=t, backend="numpy", **kw)
        assert w1.tobytes() == w2.tobytes(), (name, kw)
        for a, b in zip(s1, s2):
            assert a.tobytes() == b.tobytes(), (name, kw)


@pytest.mark.parametrize("n", [1, 7, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kw",
    [  # t0=3: the average moves from step 5 on; weight decay and maximize
        dict(lr=0.05, lambd=0.01, alpha=0.75, t0=3.0, weight_decay=0.01, maximize=False),
        dict(lr=0.02, lambd=1e-4, alpha=0.5, t0=1e6, weight_decay=0.0, maximize=True),
    ],
)
def test_njit_asgd_equals_kernels_with_its_carried_eta_and_mu(kw, dtype, n):
    rng = np.random.default_rng(n)
    w0 = rng.standard_normal(n).astype(dtype)
    gs = rng.standard_normal((8, n)).astype(dtype)
    w1, a1, w2, a2 = w0.copy(), np.zeros_like(w0), w0.copy(), np.zeros_like(w0)
    got = _loop_asgd(w1, gs, a1, *kw.values())
    want = (0.0, 1.0)
    for t in range(1, gs.shape[0] + 1):
        want = fastopt.kernels.asgd(
            w2, gs[t - 1], a2, step=t, eta=want[0], mu=want[1], backend="numpy", **kw
        )
    assert got == want and w1.tobytes() == w2.tobytes() and a1.tobytes() == a2.tobytes()
    assert not np.array_equal(w1, w0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_defaults_are_the_kernels(dtype):
    rng = np.random.default_rng(1)
    w0, gs = rng.standard_normal(7).astype(dtype), rng.standard_normal((3, 7)).astype(dtype)
    w1, m1, v1 = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    w2, m2, v2 = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    _loop_defaults(w1, gs, m1, v1)
    for t in range(1, 4):
        fastopt.kernels.adam(w2, gs[t - 1], m2, v2, step=t, backend="numpy")
        fastopt.kernels.adamw(w2, gs[t - 1], m2, v2, step=t, backend="numpy")
    assert w1.tobytes() == w2.tobytes()


def test_same_signatures_as_kernels():
    import inspect

    for name in J.__all__:
        a = inspect.signature(getattr(J, name)).parameters
        b = inspect.signature(getattr(fastopt.kernels, name)).parameters
        assert [(p.name, p.kind, p.default) for p in a.values()] == [
            (p.name, p.kind, p.default) for p in b.values() if p.name != "backend"
        ]


def test_checks_from_python_and_njit():
    w, g = np.ones(3), np.ones(3)
    with pytest.raises(ValueError, match="step must be >= 1"):
        J.adam(w, g, np.zeros(3), np.zeros(3), step=0)
    with pytest.raises(ValueError, match="beta1"):
        J.adam(w, g, np.zeros(3), np.zeros(3), step=1, betas=(1.5, 0.9))
    with pytest.raises(ValueError, match="lr"):
        J.sgd(w, g, step=1, lr=float("nan"))
    with pytest.raises(ValueError, match="needs momentum_buffers"):
        J.sgd(w, g, step=1, momentum=0.9)
    with pytest.raises(ValueError, match="amsgrad=True needs"):
        J.adam(w, g, np.zeros(3), np.zeros(3), step=1, amsgrad=True)
    with pytest.raises(ValueError, match="shape"):
        J.adagrad(w, np.ones(4), np.zeros(3), step=1)
    with pytest.raises(ValueError, match="rho"):
        J.adadelta(w, g, np.zeros(3), np.zeros(3), rho=1.5)
    with pytest.raises(ValueError, match="beta2"):
        J.radam(w, g, np.zeros(3), np.zeros(3), step=1, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        J.adamax(w, g, np.zeros(3), np.zeros(3), step=1, eps=-1.0)
    for etas, what in (((1.0, 1.2), "etaminus"), ((0.0, 1.2), "etaminus"), ((0.5, 1.0), "etaplus")):
        with pytest.raises(ValueError, match=what):
            J.rprop(w, g, np.zeros(3), np.zeros(3), step=1, etas=etas)
    with pytest.raises(ValueError, match="step_sizes"):
        J.rprop(w, g, np.zeros(3), np.zeros(3), step=1, step_sizes=(1.0, 0.5))
    with pytest.raises(ValueError, match="mu must be"):
        J.asgd(w, g, np.zeros(3), step=2, eta=0.1, mu=1.5)
    with pytest.raises(ValueError, match="lambd"):
        J.asgd(w, g, np.zeros(3), step=1, lambd=-1.0)
    assert (w == 1).all()
    with pytest.raises(numba.core.errors.TypingError):
        J.adam(w, g.astype(np.float32), np.zeros(3), np.zeros(3), step=1)


_CACHED_USER = """
import numpy as np, numba, fastopt.jit as J

@numba.njit(cache=True)
def train(w, g, s, n):
    eta, mu = 0.0, 1.0
    for t in range(1, n + 1):
        J.adam(w, g, s[0], s[1], step=t, lr=1e-2)
        J.sgd(w, g, s[2], step=t, momentum=0.9, nesterov=True)
        J.rmsprop(w, g, s[3])  # no step, no optional state
        eta, mu = J.asgd(w, g, s[4], step=t, eta=eta, mu=mu, t0=2.0)
    return eta, mu

w, s = np.linspace(-1.0, 1.0, 7), np.zeros((5, 7))
print(train(w, np.cos(w), s, 4), w.tobytes().hex(), sum(train.stats.cache_hits.values()))
"""


def test_cached_user_function(tmp_path):
    """A user's @numba.njit(cache=True) function that calls fastopt.jit: compiled and saved
    by the first process, loaded by the second, with the same results."""
    (tmp_path / "user.py").write_text(_CACHED_USER)
    runs = [
        subprocess.run(
            [sys.executable, str(tmp_path / "user.py")],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
    first, second = (r.stdout.split() for r in runs)
    assert first[:-1] == second[:-1] and (first[-1], second[-1]) == ("0", "1")


def test_import_fastopt_does_not_import_numba():
    code = "import sys, fastopt; fastopt.kernels; print('numba' in sys.modules)"
    env = dict(os.environ, FASTOPT_BACKEND="numpy")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "False"


def test_example_runs():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "numba_training_loop.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "same bits as fastopt.Adam: True" in out.stdout
