"""The kernel contract (fastopt._contract): defaults written once, derived scalars computed
once with today's formulas, one keyword backend interface, the docs in the classes."""

import inspect
import math
import pydoc

import numpy as np
import pytest

import fastopt
from fastopt import _contract as C
from fastopt._validation import RULES

CLASSES = {
    "sgd": fastopt.SGD,
    "adagrad": fastopt.Adagrad,
    "rmsprop": fastopt.RMSprop,
    "adam": fastopt.Adam,
    "adamw": fastopt.AdamW,
    "adamax": fastopt.Adamax,
    "nadam": fastopt.NAdam,
    "radam": fastopt.RAdam,
    "adadelta": fastopt.Adadelta,
    "rprop": fastopt.Rprop,
    "asgd": fastopt.ASGD,
}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_signature_defaults_are_the_contracts(name):
    spec, cls = C.SPECS[name], CLASSES[name]
    params = inspect.signature(cls.__init__).parameters
    for opt in spec.options:
        assert params[opt.name].default == opt.default, opt.name
    kern = inspect.signature(getattr(fastopt.kernels, name)).parameters
    for opt in spec.options:
        if opt.name in kern:
            assert kern[opt.name].default == opt.default, opt.name
    assert not hasattr(cls, "_defaults")  # the class attribute of old is gone


def test_torch_defaults():
    assert C.ADAMW.defaults["weight_decay"] == 1e-2 and C.ADAM.defaults["weight_decay"] == 0.0
    assert C.SGD.defaults["lr"] == 1e-3 and C.ADAGRAD.defaults["eps"] == 1e-10
    assert C.ADAM.defaults["betas"] == (0.9, 0.999) and C.RMSPROP.defaults["alpha"] == 0.99
    assert C.ADAMAX.defaults["lr"] == 2e-3 and C.ADAMAX.defaults["betas"] == (0.9, 0.999)
    assert C.RADAM.defaults["lr"] == 1e-3 and C.RADAM.defaults["decoupled_weight_decay"] is False
    assert C.ADADELTA.defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False)
    assert C.RPROP.defaults == dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False)
    assert C.ASGD.defaults == dict(
        lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False
    )


def test_adamw_calls_its_parent(monkeypatch):
    calls = []
    orig = fastopt.Adam.__init__

    def spy(self, *a, **k):
        calls.append(type(self).__name__)
        orig(self, *a, **k)

    monkeypatch.setattr(fastopt.Adam, "__init__", spy)
    opt = fastopt.AdamW([np.zeros(3)])
    assert calls == ["AdamW"] and opt.defaults["weight_decay"] == 1e-2


@pytest.mark.parametrize("name", sorted(C.SPECS))
def test_bounds_agree_with_the_validation_rules(name):
    """The numeric bounds (used by fastopt.jit) say what the Python rules say."""
    for opt in C.SPECS[name].options:
        for rule, (low, high, high_open) in zip(opt.rules, opt.bounds):
            for v in (low, low - 1e-9, high, high - 1e-9, 0.5, 1e3, -1e3, math.inf, math.nan):
                if math.isinf(v) and v == low:
                    continue
                try:
                    RULES[rule](rule, v)
                    ok = True
                except ValueError:
                    ok = False
                want = not (
                    v != v or math.isinf(v) or v < low or v > high or (high_open and v >= high)
                )
                assert ok == want, (rule, v)


def _reference_scalars(kind, o, t):
    """Today's formulas, written out (the C++ API computes the same)."""
    if kind == "sgd":
        return dict(
            lr=o["lr"],
            momentum=o["momentum"],
            one_minus_damp=1 - o["dampening"],
            wd=o["weight_decay"],
            nesterov=o["nesterov"],
            maximize=o["maximize"],
        )
    if kind == "adagrad":
        return dict(
            clr=o["lr"] / (1 + (t - 1) * o["lr_decay"]),
            wd=o["weight_decay"],
            eps=o["eps"],
            maximize=o["maximize"],
        )
    if kind == "rmsprop":
        return dict(
            lr=o["lr"],
            alpha=o["alpha"],
            one_minus_alpha=1 - o["alpha"],
            eps=o["eps"],
            wd=o["weight_decay"],
            momentum=o["momentum"],
            centered=o["centered"],
            maximize=o["maximize"],
        )
    if kind == "rprop":
        return dict(
            lr=o["lr"],
            etaminus=o["etas"][0],
            etaplus=o["etas"][1],
            step_size_min=o["step_sizes"][0],
            step_size_max=o["step_sizes"][1],
            maximize=o["maximize"],
        )
    if kind == "asgd":  # torch's float32 eta, mu: lr and 1 at step 1, else the carried 0.0, 1.0
        eta = float(np.float32(o["lr"])) if t == 1 else 0.0
        return dict(
            eta=eta,
            decay=1 - o["lambd"] * eta,
            mu=1.0,
            average=False,
            wd=o["weight_decay"],
            maximize=o["maximize"],
        )
    if kind == "adadelta":
        return dict(
            lr=o["lr"],
            rho=o["rho"],
            one_minus_rho=1 - o["rho"],
            eps=o["eps"],
            wd=o["weight_decay"],
            maximize=o["maximize"],
        )
    if kind == "adafactor":  # torch.optim.Adafactor's Python floats
        return dict(
            decay=1 - o["lr"] * o["weight_decay"],
            wd=o["weight_decay"],
            eps1=o["eps"][0],
            eps2=o["eps"][1],
            d=o["d"],
            maximize=o["maximize"],
            weight=float(t) ** o["beta2_decay"],
            rho=min(o["lr"], 1 / (float(t) ** 0.5)),
        )
    if kind == "muon":  # torch.optim.Muon's; the Newton-Schulz options pass through
        a, b, c = o["ns_coefficients"]
        return dict(
            lr=o["lr"],
            wd=o["weight_decay"],
            decay=1 - o["lr"] * o["weight_decay"],
            weight=1 - o["momentum"],
            momentum=o["momentum"],
            nesterov=o["nesterov"],
            ns_a=a,
            ns_b=b,
            ns_c=c,
            eps=o["eps"],
            ns_steps=o["ns_steps"],
            adjust_lr_fn=o["adjust_lr_fn"],
            ns_dtype=o["ns_dtype"],
        )
    b1, b2 = o["betas"]
    if kind == "adamax":
        return dict(
            one_minus_beta1=1 - b1,
            beta2=b2,
            eps=o["eps"],
            wd=o["weight_decay"],
            step_size=o["lr"] / (1 - b1**t),
            maximize=o["maximize"],
        )
    if kind == "nadam":  # torch.optim.NAdam's scalars; mu_product a float32 tensor
        mu = b1 * (1.0 - 0.5 * (0.96 ** (t * o["momentum_decay"])))
        mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * o["momentum_decay"])))
        prod = float(np.float32(1.0) * np.float32(mu))  # from the start value 1.0
        return dict(
            one_minus_beta1=1 - b1,
            beta2=b2,
            one_minus_beta2=1 - b2,
            eps=o["eps"],
            wd=o["weight_decay"],
            decay=1 - o["lr"] * o["weight_decay"],
            bias_correction2=1 - b2**t,
            grad_coef=-o["lr"] * (1.0 - mu) / (1.0 - prod),
            avg_coef=(-o["lr"] * mu_next) / (1.0 - prod * mu_next),
            maximize=o["maximize"],
            decoupled=o["decoupled_weight_decay"],
        )
    if kind == "radam":  # torch.optim.RAdam's Python floats, written out
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * (b2**t) / bc2
        rect = rho_t > 5.0
        if rect:
            r = (
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            ) ** 0.5
            step_size = o["lr"] * (bc2**0.5) * r / bc1
        else:
            step_size = o["lr"] / bc1
        return dict(
            one_minus_beta1=1 - b1,
            beta2=b2,
            one_minus_beta2=1 - b2,
            eps=o["eps"],
            wd=o["weight_decay"],
            decay=1 - o["lr"] * o["weight_decay"],
            step_size=step_size,
            rectify=rect,
            maximize=o["maximize"],
            decoupled=o["decoupled_weight_decay"],
        )
    return dict(
        one_minus_beta1=1 - b1,
        beta2=b2,
        one_minus_beta2=1 - b2,
        eps=o["eps"],
        wd=o["weight_decay"],
        decay=1 - o["lr"] * o["weight_decay"],
        step_size=o["lr"] / (1 - b1**t),
        inv_bc2_sqrt=1.0 / (1 - b2**t) ** 0.5,
        amsgrad=o["amsgrad"],
        maximize=o["maximize"],
        decoupled=kind == "adamw",
    )


@pytest.mark.parametrize("name", sorted(C.SPECS))
def test_scalars_are_todays_formulas_bit_for_bit(name):
    spec = C.SPECS[name]
    rng = np.random.default_rng(0)
    for t in (1, 2, 7, 1000, 10**7, 2**40):
        o = dict(spec.defaults)
        for opt in spec.options:
            if opt.kind == "scalar":
                o[opt.name] = float(rng.uniform(0, 0.9))
            elif opt.kind == "pair":
                o[opt.name] = (float(rng.uniform(0, 0.99)), float(rng.uniform(0.9, 1))) + tuple(
                    float(rng.uniform(-5, 5)) for _ in opt.rules[2:]
                )
        got = spec.scalars(o, t)
        want = _reference_scalars(name, o, t)
        assert set(got) == set(want) == set(spec.scalar_names)
        for k in want:
            assert got[k] == want[k] and type(got[k]) is type(want[k]), (k, t)


def test_nadam_mu_product_is_torchs_float32_running_product():
    """The carried product: mu_t rounded to float32, the product rounded to float32 (a 0-d
    float32 tensor ``*=`` a Python float), over steps with a changing beta1."""
    prod = 1.0
    o = dict(C.NADAM.defaults)
    for t in range(1, 50):
        o["betas"] = (0.9 - 0.4 / t, 0.999)
        _, (new,) = C.NADAM.step_scalars(o, t, (prod,))
        mu = o["betas"][0] * (1.0 - 0.5 * (0.96 ** (t * o["momentum_decay"])))
        want = float(np.float32(np.float32(prod) * np.float32(mu)))
        assert new == want, t
        prod = new
    assert C.NADAM.scalars(o, 1) == C.NADAM.scalars(o, 1, (1.0,))


def test_asgd_eta_and_mu_are_torchs_float32_values():
    """torch's end-of-step update, in Python floats then rounded to float32 by copy_ into a
    0-d float32 tensor: eta = lr / (1 + lambd lr t)**alpha, mu = 1 / max(1, t - t0); the
    step uses the values carried from the previous one (lr and 1 at the first), with this
    step's lambd in the decay, over steps with a changing lr."""
    o = dict(C.ASGD.defaults, lambd=0.3, alpha=0.6, t0=4.0)
    carried = (123.0, 0.5)  # ignored at step 1
    for t in range(1, 30):
        o["lr"] = 0.1 / t
        sc, new = C.ASGD.step_scalars(o, t, carried)
        eta = float(np.float32(o["lr"])) if t == 1 else carried[0]
        mu = 1.0 if t == 1 else carried[1]
        assert (sc["eta"], sc["mu"], sc["decay"]) == (eta, mu, 1 - o["lambd"] * eta), t
        assert sc["average"] is (mu != 1.0)
        want_eta = float(np.float32(o["lr"] / ((1 + o["lambd"] * o["lr"] * t) ** o["alpha"])))
        want_mu = float(np.float32(1 / max(1, t - o["t0"])))
        assert new == (want_eta, want_mu), t
        carried = new
    assert sc["average"] and carried[1] == float(np.float32(1 / 25))


def test_numba_compiles_the_same_functions_to_the_same_bits():
    numba = pytest.importorskip("numba")
    import fastopt.jit  # noqa: F401  (registers the contract's float32 rounding for Numba)

    jitted = numba.njit(C.asgd_per_step)
    for args in [(1e-2, 1e-4, 0.75, 1e6, 0.01, 1.0), (0.3, 0.7, 0.5, 3.0, 0.2, 0.25)]:
        for t in (1, 2, 5, 77, 10**7, 2**40 + 1):
            assert jitted(*args, t) == C.asgd_per_step(*args, t), t
    for fn, args in [
        (C.adam_per_step, (1e-3, 0.9, 0.999)),
        (C.adam_per_step, (0.3, 0.123, 1 - 1e-8)),
        (C.adagrad_per_step, (0.1, 0.01)),
        (C.adamax_per_step, (2e-3, 0.9)),
        (C.radam_per_step, (1e-3, 0.9, 0.999)),
        (C.radam_per_step, (0.3, 0.5, 0.95)),
    ]:
        jitted = numba.njit(fn)
        for t in (1, 3, 77, 10**7, 2**40 + 1):
            assert jitted(*args, t) == fn(*args, t), (fn.__name__, t)
    jitted = numba.njit(C.adam_constants)
    assert jitted(1e-3, 0.9, 0.999, 1e-8, 0.1, True, False, True) == C.adam_constants(
        1e-3, 0.9, 0.999, 1e-8, 0.1, True, False, True
    )


@pytest.mark.parametrize("backend", fastopt.available_backends())
def test_backend_interface_is_keyword_based(backend):
    from fastopt.backends import resolve

    _, be = resolve(backend)
    p, g, m, v = np.ones(3), np.ones(3), np.zeros(3), np.zeros(3)
    sc = C.ADAM.scalars(C.ADAM.defaults, 1)
    be.step("adam", [p], [g], {"exp_avg": [m], "exp_avg_sq": [v]}, sc, names=["w"])
    ref = np.ones(3)
    fastopt.kernels.adam(ref, g, np.zeros(3), np.zeros(3), step=1, backend="numpy")
    assert p.tobytes() == ref.tobytes()
    with pytest.raises(TypeError):
        be.step("adam", [p], [g], {"exp_avg": [m], "exp_avg_sqs": [v]}, sc)  # unknown state
    with pytest.raises(TypeError):
        be.step("adam", [p], [g], {"exp_avg": [m], "exp_avg_sq": [v]}, {**sc, "lr": 1.0})
    with pytest.raises(ValueError):
        be.step("lion", [p], [g], {}, sc)
    assert not hasattr(be, "adam") and not hasattr(be, "sgd")  # no positional entry points


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_help_shows_formula_args_and_robustness(name):
    text = pydoc.render_doc(CLASSES[name], renderer=pydoc.plaintext)
    assert ".. math::" in text and "Args:" in text
    assert "Robustness options" in text and "nonfinite" in text and "max_grad_norm" in text
    for opt in C.SPECS[name].options:
        assert f"{opt.name} (" in text, opt.name
        assert f"default {opt.default!r})" in text, opt.name  # written from the contract


def test_readme_style_script_passes_mypy_strict(tmp_path):
    pytest.importorskip("mypy")
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "typecheck", "readme_user_script.py")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path),
            script,
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
