"""The optimizer's own arrays (state, float32 masters) are placed off the parameter's offset
within the 4 KiB page (fastopt._memory), so that the kernel's streams do not 4K-alias; the
placement changes nothing else: zeros or the fill value, dtype, shape, C order, and the same
trajectory as arrays allocated by NumPy."""

import numpy as np
import pytest

import fastopt
from fastopt import _memory

BIG = 100_003  # 400 KB in float32: placed
SMALL = 1000  # 4 KB: left to NumPy


def _offset(a):
    return a.ctypes.data % _memory.PAGE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(BIG,), (317, 331), (5, 7, 2003)])
def test_zeros_beside_is_zeros_at_the_asked_offset(dtype, shape):
    p = np.ones(shape, dtype)
    seen = set()
    for slot in (1, 2, 3):
        a = _memory.zeros_beside(shape, dtype, p, slot)
        assert a.shape == shape and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
        assert not a.any()
        assert _offset(a) == (_offset(p) + slot * _memory.STRIDE) % _memory.PAGE
        assert _offset(a) % 64 == _offset(p) % 64  # same alignment within a cache line
        seen.add(_offset(a))
        a[...] = 3  # the whole array is its own memory
        assert a.sum() == 3 * a.size
    assert len(seen) == 3


def test_small_arrays_are_plain_numpy():
    p = np.ones(SMALL, np.float32)
    a = _memory.zeros_beside((SMALL,), np.float32, p, 1)
    assert a.base is None and a.nbytes < _memory.MIN_BYTES and not a.any()


def test_adam_state_sits_off_the_parameter():
    p = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
    opt = fastopt.Adam([p], amsgrad=True)
    opt.step([np.ones_like(p)])
    st = opt.state[0]
    offs = [_offset(st[k]) for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")]
    assert offs == [(_offset(p) + s * _memory.STRIDE) % _memory.PAGE for s in (1, 2, 3)]


def test_fill_value_and_trajectory_unchanged(monkeypatch):
    """Adagrad's initial_accumulator_value fills the placed array; the trajectory equals the
    one with state allocated by plain np.zeros / np.full_like."""
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(BIG).astype(np.float32)
    grads = [rng.standard_normal(BIG).astype(np.float32) for _ in range(3)]

    def run():
        p = p0.copy()
        opt = fastopt.Adagrad([p], lr=0.1, initial_accumulator_value=0.3)
        for g in grads:
            opt.step([g])
        return p, opt.state[0]["sum"]

    placed_p, placed_sum = run()
    monkeypatch.setattr(
        _memory, "zeros_beside", lambda shape, dtype, beside, slot: np.zeros(shape, dtype)
    )
    plain_p, plain_sum = run()
    assert placed_p.tobytes() == plain_p.tobytes()
    assert placed_sum.tobytes() == plain_sum.tobytes()
    fresh = fastopt.Adagrad([p0.copy()], initial_accumulator_value=0.3)
    fresh.step([np.zeros_like(p0)])
    assert (fresh.state[0]["sum"] == np.float32(0.3)).all()


def test_loaded_state_keeps_its_placement():
    p = np.ones(BIG, np.float32)
    opt = fastopt.Adam([p])
    opt.step([np.full_like(p, 0.5)])
    sd = opt.state_dict()
    q = np.ones(BIG, np.float32)
    opt2 = fastopt.Adam([q])
    opt2.load_state_dict(sd)
    st = opt2.state[0]
    assert _offset(st["exp_avg"]) == (_offset(q) + _memory.STRIDE) % _memory.PAGE
    assert st["exp_avg"].tobytes() == opt.state[0]["exp_avg"].tobytes()


def test_master_copy_is_exact_and_placed():
    p = np.random.default_rng(2).standard_normal(BIG).astype(np.float16)
    opt = fastopt.Adam([p], master_weights=True)
    master = opt._masters[0][0]
    assert master.dtype == np.float32 and master.tobytes() == p.astype(np.float32).tobytes()
    assert not np.shares_memory(master, p)
    opt.step([np.ones_like(p)])
    st = opt.state[0]
    offs = {_offset(master), _offset(st["exp_avg"]), _offset(st["exp_avg_sq"])}
    assert len(offs) == 3  # the kernel streams master, exp_avg, exp_avg_sq: all apart
