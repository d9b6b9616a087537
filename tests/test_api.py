"""The optimizer API: parameter structures, groups, schedules as callables, state, backends."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastopt


def test_available_backends_lists_numpy_last():
    names = fastopt.available_backends()
    assert names[-1] == "numpy" and set(names) <= {"native", "numba", "numpy"}


def test_native_is_built_in_this_installation():
    # The Makefile installs with a C++ compiler present; the compiled kernels must be there.
    assert "native" in fastopt.available_backends()
    assert fastopt.Adam([np.ones(2)]).backend == "native"


def test_env_variable_selects_backend(monkeypatch):
    monkeypatch.setenv("FASTOPT_BACKEND", "numpy")
    assert fastopt.SGD([np.ones(2)]).backend == "numpy"
    monkeypatch.setenv("FASTOPT_BACKEND", "fortran")
    with pytest.raises(ValueError, match="FASTOPT_BACKEND='fortran'"):
        fastopt.SGD([np.ones(2)])
    # an explicit argument wins over the environment
    assert fastopt.SGD([np.ones(2)], backend="numpy").backend == "numpy"


def _run(code, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_import_without_extension_warns_once_and_falls_back():
    code = (
        "import sys; sys.modules['fastopt._native'] = None\n"
        "import numpy as np, fastopt\n"
        "print(fastopt.available_backends())\n"
        "p = np.ones(3); fastopt.Adam([p], lr=0.1).step([np.ones(3)]); fastopt.SGD([np.ones(2)])\n"
        "print(fastopt.Adam([np.ones(1)]).backend, p)\n"
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr
    # numba is an optional extra (tests/test_packaging.py covers an install without it)
    fallback = "numba" if "numba" in fastopt.available_backends() else "numpy"
    assert str([b for b in ("numba", "numpy") if b in fastopt.available_backends()]) in r.stdout
    assert f"{fallback} [0.9 0.9 0.9]" in r.stdout
    assert r.stderr.count("compiled kernels (fastopt._native) are not available") == 1
    assert "make install" in r.stderr or "pip install" in r.stderr


def test_import_without_extension_quiet_when_backend_chosen():
    code = "import sys; sys.modules['fastopt._native'] = None\nimport fastopt\n"
    r = _run(code, {"FASTOPT_BACKEND": "numpy"})
    assert r.returncode == 0 and "not available" not in r.stderr


def test_dict_params_take_dict_grads_by_name(backend):
    w, b = np.ones((2, 3)), np.zeros(3)
    opt = fastopt.SGD({"w": w, "b": b}, lr=0.5, backend=backend)
    opt.step({"b": np.ones(3), "w": np.full((2, 3), 2.0)})
    np.testing.assert_array_equal(w, 0.0)
    np.testing.assert_array_equal(b, -0.5)
    # A list would be matched by dict order, which is ambiguous (issue #9): refused.
    with pytest.raises(TypeError, match="params were given by name: pass grads as a dict"):
        opt.step([np.zeros((2, 3)), np.ones(3)])
    np.testing.assert_array_equal(b, -0.5)
    assert set(opt.state) == {"w", "b"}


def test_list_params_reject_dict_grads():
    opt = fastopt.SGD([np.ones(2)])
    with pytest.raises(TypeError, match="pass the gradients as a list"):
        opt.step({"0": np.ones(2)})


def test_param_groups_have_their_own_options(backend):
    a, b = np.ones(3), np.ones(3)
    opt = fastopt.SGD(
        [{"params": [a]}, {"params": [b], "lr": 0.5, "weight_decay": 1.0}], lr=0.1, backend=backend
    )
    opt.step([np.ones(3), np.ones(3)])
    np.testing.assert_allclose(a, 0.9)
    np.testing.assert_allclose(b, 1 - 0.5 * (1 + 1.0))
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.last_lr == [0.1, 0.5]


def test_callable_lr_is_evaluated_at_the_step_counter(backend):
    seen = []

    def lr(k):
        seen.append(k)
        return 0.1 * (k + 1)

    p = np.zeros(1)
    opt = fastopt.SGD([p], lr=lr, backend=backend)
    for _ in range(3):
        opt.step([np.ones(1)])
    assert seen[-3:] == [0, 1, 2]
    np.testing.assert_allclose(p, -(0.1 + 0.2 + 0.3))
    assert opt.step_count == 3
    assert opt.last_lr == [pytest.approx(0.3)]


def test_scheduled_beta1_and_momentum(backend):
    p, q = np.ones(2), np.ones(2)
    adam = fastopt.Adam([p], lr=0.1, betas=(lambda k: 0.5, 0.9), backend=backend)
    ref = fastopt.Adam([q], lr=0.1, betas=(0.5, 0.9), backend=backend)
    for _ in range(5):
        adam.step([p.copy()])
        ref.step([q.copy()])
    assert np.array_equal(p, q)


def test_state_dict_resume_is_bit_identical(backend):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(11) for _ in range(40)]
    p = np.ones(11)
    full = fastopt.Adam([p], lr=lambda k: 0.01 * 0.9**k, amsgrad=True, backend=backend)
    for g in grads:
        full.step([g])
    q = np.ones(11)
    first = fastopt.Adam([q], lr=lambda k: 0.01 * 0.9**k, amsgrad=True, backend=backend)
    for g in grads[:20]:
        first.step([g])
    sd = first.state_dict()
    q_saved = q.copy()
    for g in grads[:5]:
        first.step([g])  # the snapshot must not follow later steps
    r = q_saved.copy()
    resumed = fastopt.Adam([r], lr=lambda k: 0.01 * 0.9**k, amsgrad=True, backend=backend)
    resumed.load_state_dict(sd)
    assert resumed.step_count == 20
    for g in grads[20:]:
        resumed.step([g])
    assert np.array_equal(r, p)


def test_load_state_dict_checks_before_changing(backend):
    p = np.ones(3)
    opt = fastopt.Adam([p], backend=backend)
    opt.step([np.ones(3)])
    other = fastopt.SGD([np.ones(3)], momentum=0.9)
    with pytest.raises(ValueError, match="from a SGD optimizer, not Adam"):
        opt.load_state_dict(other.state_dict())
    bad = fastopt.Adam([np.ones(4)]).state_dict()
    before = opt.state_dict()
    with pytest.raises(ValueError, match=r"saved float64\(4,\), parameter is float64\(3,\)"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["step_count"] == before["step_count"]
    assert np.array_equal(after["state"][0]["exp_avg"], before["state"][0]["exp_avg"])


def test_adam_group_added_later_has_its_own_bias_correction(backend):
    a, b = np.zeros(2), np.zeros(2)
    opt = fastopt.Adam([a], lr=0.1, backend=backend)
    opt.step([np.ones(2)])
    opt.add_param_group({"params": [b]})
    opt.step([np.ones(2), np.ones(2)])
    # b's first Adam step moves it by exactly lr, as a's first step did.
    np.testing.assert_allclose(b, -0.1)


def test_hooks_run_and_can_be_removed(backend):
    calls = []
    opt = fastopt.SGD([np.ones(2)], lr=0.1, backend=backend)
    h1 = opt.register_step_pre_hook(lambda o, g: calls.append(("pre", o.step_count)))
    h2 = opt.register_step_post_hook(lambda o, g: calls.append(("post", o.step_count)))
    opt.step([np.ones(2)])
    h1.remove()
    h2.remove()
    opt.step([np.ones(2)])
    assert calls == [("pre", 0), ("post", 1)]


def test_sgd_momentum_first_step_copies_gradient(backend):
    """PyTorch's rule: the buffer starts as the gradient (no dampening on step 1)."""
    p = np.zeros(1)
    opt = fastopt.SGD([p], lr=1.0, momentum=0.9, dampening=0.5, backend=backend)
    opt.step([np.ones(1)])
    np.testing.assert_allclose(p, -1.0)
    opt.step([np.ones(1)])  # buf = 0.9 * 1 + 0.5 * 1 = 1.4
    np.testing.assert_allclose(p, -2.4)


def test_repr_and_defaults():
    opt = fastopt.AdamW([np.ones(1)])
    assert opt.defaults["weight_decay"] == 1e-2 and opt.defaults["lr"] == 1e-3
    assert fastopt.SGD([np.ones(1)]).defaults["lr"] == 1e-3
    assert fastopt.Adagrad([np.ones(1)]).defaults["eps"] == 1e-10
    assert fastopt.RMSprop([np.ones(1)]).defaults["alpha"] == 0.99
    assert "AdamW(backend=" in repr(opt)


def test_plateau_inside_join_is_saved_and_restored(backend):
    from fastopt import schedules as S

    def build():
        plateau = S.ReduceOnPlateau(0.1, patience=1, factor=0.5)
        return plateau, S.join([S.linear(0.0, 0.1, 5), plateau], [5])

    pl, sched = build()
    p = np.ones(3)
    opt = fastopt.SGD([p], lr=sched, backend=backend)
    for _k in range(10):
        opt.step([np.ones(3)])
        pl.observe(1.0)  # a flat metric: the plateau halves the rate
    sd = opt.state_dict()
    pl2, sched2 = build()
    opt2 = fastopt.SGD([p.copy()], lr=sched2, backend=backend)
    assert pl2(0) == 0.1
    opt2.load_state_dict(sd)
    assert pl2(0) == pl(0) < 0.1
    assert pl2.state_dict() == pl.state_dict()
    # A run built without the plateau cannot silently drop its state.
    opt3 = fastopt.SGD([p.copy()], lr=0.1, backend=backend)
    with pytest.raises(ValueError, match="stateful schedule"):
        opt3.load_state_dict(sd)
