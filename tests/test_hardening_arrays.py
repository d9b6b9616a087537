"""Array-level hardening (issue #9): the C++ runtime kept private, aliasing through strided
views and other groups' state, ndarray subclasses, misaligned arrays, arrays freed by another
thread during a native step, and named parameters stepped with a list of gradients."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastopt
from _cmake import build_native
from conftest import BACKENDS, IDS, OPTIMIZERS, snapshot

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


def everything(opt):
    return [p for g in opt.param_groups for p in g["params"]] + [
        a for st in opt.state.values() for a in st.values()
    ]


def refuses(opt, grads, exc, fragment):
    """``opt.step(grads)`` raises ``exc`` matching ``fragment`` and changes nothing."""
    before = snapshot(everything(opt))
    steps = (opt.step_count, [g["step"] for g in opt._group_state])
    with pytest.raises(exc, match=fragment) as info:
        opt.step(grads)
    assert snapshot(everything(opt)) == before
    assert (opt.step_count, [g["step"] for g in opt._group_state]) == steps
    return str(info.value)


def same_message_everywhere(call):
    """Run ``call(backend)`` on every backend; each raises; return the one (type, message)."""
    seen = set()
    for be in BACKENDS:
        with pytest.raises((TypeError, ValueError)) as info:
            call(be)
        seen.add((type(info.value), str(info.value)))
    assert len(seen) == 1, seen
    return seen.pop()


# ---------------------------------------------------------------- 1. private C++ runtime
def _native_path():
    from fastopt import _native

    return _native.__file__


def _exported_std_symbols(path):
    out = subprocess.run(
        ["nm", "-DC", "--defined-only", path], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if "std::" in line]


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")
def test_native_module_exports_no_std_symbols():
    assert _exported_std_symbols(_native_path()) == []


def test_extension_sources_use_no_iostreams():
    bad = re.compile(r"#\s*include\s*<(sstream|iostream|ostream|istream|fstream|iomanip|locale)>")
    hits = [
        f"{p}: {line}"
        for p in (ROOT / "cpp").rglob("*")
        if p.is_file()
        for line in p.read_text(errors="replace").splitlines()
        if bad.search(line)
    ]
    assert hits == []


def _static_build_tools():
    """Reason to skip the static-runtime build, or None."""
    if not (ROOT / "CMakeLists.txt").exists():
        return "not a source checkout"
    for tool in ("cmake", "nm", "readelf", "g++"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    lib = subprocess.run(
        ["g++", "-print-file-name=libstdc++.a"], capture_output=True, text=True
    ).stdout.strip()
    if not os.path.isabs(lib):
        return "this toolchain has no static libstdc++ (libstdc++.a)"
    try:
        import pybind11  # noqa: F401
    except ImportError:
        return "needs pybind11 (in the test extra)"
    return None


@pytest.mark.skipif(_static_build_tools() is not None, reason=str(_static_build_tools()))
def test_static_libstdcxx_build_keeps_runtime_private(tmp_path):
    """Build the module as the toolchain of issue #9 did (LDFLAGS=-static-libstdc++, which
    embeds the C++ runtime): no std:: symbol may be exported, and the wrong-shape message
    (formatted without iostreams) comes out of that build intact."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "CXXFLAGS", "CFLAGS")}
    env["LDFLAGS"] = "-static-libstdc++"
    build = tmp_path / "build"
    so = build_native(build, env)
    needed = subprocess.run(
        ["readelf", "-d", str(so)], capture_output=True, text=True, check=True
    ).stdout
    assert "libstdc++" not in needed  # the runtime really is inside the module
    assert _exported_std_symbols(str(so)) == []
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(build)!r})
        import numpy as np, _native
        try:
            _native.step("sgd", [np.ones((2, 3))], [np.ones((3, 2))], {{}},
                         dict(lr=0.1, momentum=0.0, one_minus_damp=1.0, wd=0.0,
                              nesterov=False, maximize=False, first=True))
        except ValueError as e:
            print(e)
    """)
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "grads[0] has shape (3, 2) but its parameter has (2, 3)" in r.stdout


# ---------------------------------------------------------------- 2. aliasing (R4)
def two_groups(cls, kw, backend, dtype=np.float32):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(6).astype(dtype), rng.standard_normal(6).astype(dtype)
    opt = cls([{"params": [a]}, {"params": [b], "lr": 0.05}], backend=backend, **kw)
    opt.step([np.full(6, 0.5, dtype), np.full(6, 0.25, dtype)])
    return opt, a, b


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_grad_strided_view_of_other_groups_param_is_refused(opt_case, backend):
    opt, a, b = two_groups(*opt_case, backend)
    refuses(opt, [np.ones(6, np.float32), a[::-1]], ValueError, "shares memory")
    refuses(opt, [b[::-1], np.ones(6, np.float32)], ValueError, "shares memory")
    refuses(
        opt,
        [np.ones(6, np.float32), a.reshape(2, 3).T.ravel(order="K")[::-1]],
        ValueError,
        "shares memory",
    )


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_grad_that_is_other_groups_state_is_refused(opt_case, backend):
    opt, _a, _b = two_groups(*opt_case, backend)
    for _key, st in opt.state[0].items():  # group 0's state, as group 1's gradient
        refuses(opt, [np.ones(6, np.float32), st], ValueError, "shares memory")
        refuses(opt, [np.ones(6, np.float32), st[::-1]], ValueError, "shares memory")
    for _key, st in opt.state[1].items():
        refuses(opt, [st[::-1], np.ones(6, np.float32)], ValueError, "shares memory")


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_grad_strided_view_in_one_group_is_refused(opt_case, backend):
    cls, kw = opt_case
    a, b = np.ones(6, np.float32), np.ones(6, np.float32)
    opt = cls([a, b], backend=backend, **kw)
    opt.step([np.full(6, 0.5, np.float32)] * 2)
    refuses(opt, [np.ones(6, np.float32), a[::-1]], ValueError, "shares memory")
    refuses(opt, [b[::-1], np.ones(6, np.float32)], ValueError, "shares memory")
    for st in opt.state[1].values():  # this group's own state, through a strided view
        refuses(opt, [st[::-1], np.ones(6, np.float32)], ValueError, "shares memory")
        refuses(opt, [np.ones(6, np.float32), st[::-1]], ValueError, "shares memory")


def test_functional_kernel_refuses_strided_alias(backend):
    p, m, v = np.ones(5), np.zeros(5), np.zeros(5)
    before = snapshot([p, m, v])
    for g in (p[::-1], m[::-1], np.lib.stride_tricks.as_strided(v, (5,), (0,))):
        with pytest.raises(ValueError, match="shares memory"):
            fastopt.kernels.adam(p, g, m, v, step=1, backend=backend)
    assert snapshot([p, m, v]) == before


def test_strided_alias_message_is_the_same_on_every_backend():
    p, m, v = np.ones(5), np.zeros(10), np.zeros(5)
    _, msg = same_message_everywhere(
        lambda be: fastopt.kernels.adam([p], [m[::-2]], [m[:5]], [v], step=1, backend=be)
    )
    assert msg.startswith("exp_avgs[0] shares memory with grads[0]") or msg.startswith(
        "grads[0] shares memory with exp_avgs[0]"
    ), msg


def test_add_param_group_refuses_another_params_state(backend):
    opt = fastopt.Adam([np.ones(4)], lr=0.1, backend=backend)
    opt.step([np.ones(4)])
    m = opt.state[0]["exp_avg"]
    for bad in (m, m[1:3]):
        with pytest.raises(
            ValueError,
            match=r"state\[0\]\['exp_avg'\] shares memory with "
            r"params\[1\]|params\[1\] shares memory with state\[0\]\['exp_avg'\]",
        ):
            opt.add_param_group({"params": [bad]})
    assert len(opt.param_groups) == 1 and len(opt._names) == 1


@pytest.mark.parametrize("layout", ["in_order", "shuffled"])
@pytest.mark.parametrize("alias", [(3, 17), (17, 3), (0, 29)], ids=["earlier", "later", "ends"])
def test_alias_among_many_arrays_same_message_everywhere(layout, alias):
    """30 parameters (more than a small sort handles), their memory one buffer cut in order or
    shuffled, each gradient a separate array but one, which is another parameter: every
    backend refuses with the same message, naming the two arrays, and changes nothing."""
    n, size = 30, 8
    order = np.arange(n) if layout == "in_order" else np.random.default_rng(5).permutation(n)
    g_row, p_row = alias
    messages = set()
    for be in BACKENDS:
        buf = np.arange(n * size, dtype=np.float32)
        params = [buf[k * size : (k + 1) * size] for k in order]
        grads = [np.full(size, 0.5, np.float32) for _ in range(n)]
        opt = fastopt.Adam(params, backend=be)
        opt.step(grads)
        grads[g_row] = params[p_row]
        messages.add(refuses(opt, grads, ValueError, "shares memory"))
    assert len(messages) == 1, messages
    msg = messages.pop()
    assert f"params[{p_row}]" in msg and f"grads[{g_row}]" in msg, msg


def test_refused_list_group_leaves_named_parameters_named(backend):
    """A list group that ``add_param_group`` refuses (after it numbered its parameters)
    changes nothing: the optimizer of named parameters still steps with a dict of grads."""
    w = np.zeros(3)
    opt = fastopt.SGD({"w": w}, lr=0.5, backend=backend)
    for bad in ([np.zeros(3, np.int32)], [], [w]):  # bad dtype, empty, shares memory
        with pytest.raises((TypeError, ValueError)):
            opt.add_param_group({"params": bad})
    opt.step({"w": np.ones(3)})
    np.testing.assert_array_equal(w, np.full(3, -0.5))  # 0 - lr * 1


# ---------------------------------------------------------------- 3. ndarray subclasses (R7)
SUBCLASS = r"is a <class 'numpy\.(matrix|ma\.MaskedArray|ma\.core\.MaskedArray)'>, an ndarray subclass.*np\.asarray\(x\)"


def _subclass_arrays():
    return [np.matrix(np.ones((2, 3))), np.ma.masked_array(np.ones(6), mask=[0, 1, 0, 0, 0, 0])]


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_subclass_param_refused_at_construction(opt_case, backend):
    cls, kw = opt_case
    for bad in _subclass_arrays():
        with pytest.raises(TypeError, match=r"params\[0\] " + SUBCLASS):
            cls([bad], backend=backend, **kw)
        opt = cls([np.ones(3)], backend=backend, **kw)
        with pytest.raises(TypeError, match=r"params\[1\] " + SUBCLASS):
            opt.add_param_group({"params": [bad]})


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_subclass_grad_refused_at_step(opt_case, backend):
    cls, kw = opt_case
    for bad in _subclass_arrays():
        p = np.ones(bad.shape)
        opt = cls([p], backend=backend, **kw)
        opt.step([np.ones(bad.shape)])
        refuses(opt, [bad], TypeError, r"grads\[0\] " + SUBCLASS)
        opt2 = cls([{"params": [p.copy()]}, {"params": [np.ones(2)]}], backend=backend, **kw)
        refuses(opt2, [bad, np.ones(2)], TypeError, r"grads\[0\] " + SUBCLASS)


@pytest.mark.parametrize("role", ["params", "grads", "state"])
def test_subclass_message_is_the_same_on_every_backend(role):
    def call(be):
        arrays = dict(params=np.ones((2, 3)), grads=np.ones((2, 3)), state=np.zeros((2, 3)))
        arrays[role] = np.matrix(arrays[role])
        fastopt.kernels.adagrad(
            arrays["params"], arrays["grads"], arrays["state"], step=1, backend=be
        )

    exc, msg = same_message_everywhere(call)
    assert exc is TypeError and re.search(SUBCLASS, msg), msg


def test_memmap_is_accepted_on_every_backend(tmp_path):
    results = []
    for be in BACKENDS:
        p = np.memmap(tmp_path / f"{be}.bin", dtype=np.float32, mode="w+", shape=(8,))
        p[:] = 1
        opt = fastopt.Adam([p], lr=0.1, backend=be)
        opt.step([np.linspace(-1, 1, 8, dtype=np.float32)])
        results.append(np.array(p))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert not np.array_equal(results[0], np.ones(8, np.float32))


# ---------------------------------------------------------------- 4. misaligned arrays (R9)
def misaligned(n, dtype=np.float64, fill=1.0):
    """A writeable array of ``n`` elements whose data starts 4 bytes off alignment."""
    itemsize = np.dtype(dtype).itemsize
    buf = np.zeros(n * itemsize + 8, np.uint8)
    start = 4 if buf.ctypes.data % 8 == 0 else 8 - buf.ctypes.data % 8 + 4
    a = buf[start : start + n * itemsize].view(dtype)
    a[...] = fill
    assert not a.flags.aligned and a.flags.writeable
    return a


ALIGNED = (
    r"is not aligned: its data does not start on a multiple of its 8-byte element size.*x\.copy\(\)"
)


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_misaligned_param_refused(opt_case, backend):
    cls, kw = opt_case
    bad = misaligned(5)
    with pytest.raises(ValueError, match=r"params\[0\] " + ALIGNED):
        cls([bad], backend=backend, **kw)
    with pytest.raises(ValueError, match=r"params\[1\] " + ALIGNED):
        cls([np.ones(2), bad], backend=backend, **kw)
    fb = np.frombuffer(bytearray(8 * 4 + 4), dtype=np.float64, offset=4)  # writeable
    if not fb.flags.aligned:
        with pytest.raises(ValueError, match=ALIGNED):
            cls([fb], backend=backend, **kw)


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_misaligned_grad_refused(opt_case, backend):
    cls, kw = opt_case
    opt = cls([np.ones(5), np.ones(3)], backend=backend, **kw)
    opt.step([np.ones(5), np.ones(3)])
    refuses(opt, [misaligned(5, fill=0.5), np.ones(3)], ValueError, r"grads\[0\] " + ALIGNED)
    opt2 = cls([{"params": [np.ones(5)]}, {"params": [np.ones(3)]}], backend=backend, **kw)
    refuses(opt2, [np.ones(5), misaligned(3)], ValueError, r"grads\[1\] " + ALIGNED)


@pytest.mark.parametrize("role", ["params", "grads", "state"])
def test_misaligned_message_is_the_same_on_every_backend(role):
    def call(be):
        arrays = dict(params=np.ones(5), grads=np.ones(5), state=np.zeros(5))
        arrays[role] = misaligned(5, fill=arrays[role][0])
        fastopt.kernels.adagrad(
            arrays["params"], arrays["grads"], arrays["state"], step=1, backend=be
        )

    exc, msg = same_message_everywhere(call)
    assert exc is ValueError and re.search(ALIGNED, msg), msg


# ---------------------------------------------------------------- 5. lifetimes (R10)
@pytest.mark.skipif("native" not in BACKENDS, reason="the compiled backend is not built")
def test_arrays_replaced_by_another_thread_during_native_step_stay_alive():
    """Another thread keeps replacing the parameter list's entries (and whole group dicts)
    while native steps run with the GIL released; the replaced arrays must not be freed under
    the kernels.  glibc is told to map every array separately, so a freed one is unmapped and
    a use after free is a segfault (a failed subprocess), not silent corruption."""
    code = textwrap.dedent("""
        import threading
        import numpy as np, fastopt
        n = 2 ** 21
        fastopt.set_num_threads(1)
        opt = fastopt.Adam([np.ones(n, np.float32), np.ones(n, np.float32)], lr=1e-3,
                           backend="native")
        grads = [np.full(n, 0.5, np.float32), np.full(n, 0.25, np.float32)]
        stop = False

        def meddle():
            i = 0
            while not stop:
                i += 1
                group = opt.param_groups[0]
                if i % 3:
                    group["params"][i % 2] = np.ones(n, np.float32)
                else:
                    opt.param_groups[0] = dict(group, params=[np.ones(n, np.float32)
                                                              for _ in group["params"]])

        t = threading.Thread(target=meddle)
        t.start()
        try:
            for _ in range(150):
                opt.step(grads)
        finally:
            stop = True
            t.join()
        print("ok", opt.step_count)
    """)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    assert "ok 150" in r.stdout


# ---------------------------------------------------------------- 6. named params, list grads
@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_named_params_refuse_a_list_of_grads(opt_case, backend):
    cls, kw = opt_case
    params = {"w": np.ones(4, np.float32), "b": np.ones(4, np.float32)}
    opt = cls(params, backend=backend, **kw)
    opt.step({"w": np.ones(4, np.float32), "b": np.ones(4, np.float32)})
    g = [np.full(4, 0.5, np.float32), np.full(4, 0.25, np.float32)]
    for grads in (g, tuple(g), g[::-1]):
        refuses(opt, grads, TypeError, r"params were given by name: pass grads as a dict by name")
    two = cls([{"params": {"w": np.ones(2)}}, {"params": {"b": np.ones(3)}}], backend=backend, **kw)
    refuses(two, [np.ones(2), np.ones(3)], TypeError, "pass grads as a dict by name")


@pytest.mark.parametrize("k", [2, 16, 17, 70], ids=lambda k: f"{k}params")
def test_alias_found_and_named_among_few_and_many_arrays(k, backend):
    """The native aliasing check orders a call's memory intervals by insertion for up to
    64 of them and by per-slot merges above: a gradient aliasing the first parameter, the
    last one, or another row's state is found and named on either side of that limit
    (Adam: params, grads and two state arrays per row, 4k intervals: 64 at k = 16, 68 at
    k = 17)."""
    rng = np.random.default_rng(k)
    params = [rng.standard_normal(5).astype(np.float32) for _ in range(k)]
    opt = fastopt.Adam(params, backend=backend)
    good = [np.full(5, 0.1, np.float32) for _ in range(k)]
    opt.step(good)
    exp_avg = opt.state[0]["exp_avg"]
    for row, alias, who in [
        (k - 1, params[0], r"params\[0\]"),
        (0, params[k - 1], rf"params\[{k - 1}\]"),
        (k // 2, exp_avg[::-1], r"exp_avgs\[0\]|exp_avg\b"),
    ]:
        grads = list(good)
        grads[row] = alias
        msg = refuses(opt, grads, ValueError, "shares memory")
        assert re.search(rf"grads\[{row}\]", msg), msg
        assert re.search(who, msg), msg
    before = [p.copy() for p in params]
    opt.step(good)  # and a clean step still updates every parameter
    assert all((p != b).all() for p, b in zip(params, before))
