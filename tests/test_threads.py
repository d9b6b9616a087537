"""Threads: different optimizers in different threads == serial; one optimizer from two
threads at once is refused with RuntimeError (nothing corrupted)."""

import copy
import pickle
import threading

import numpy as np
import pytest

import fastopt

BACKENDS = fastopt.available_backends()
KINDS = [
    (fastopt.SGD, dict(momentum=0.9, lr=0.01)),
    (fastopt.Adam, dict(amsgrad=True)),
    (fastopt.RMSprop, dict(centered=True)),
    (fastopt.AdamW, {}),
    (fastopt.Adagrad, {}),
]


def _job(i, backend):
    cls, kw = KINDS[i % len(KINDS)]
    rng = np.random.default_rng(i)
    params = [rng.standard_normal(40_000).astype(np.float32), rng.standard_normal((50, 30))]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in params] for _ in range(4)]
    opt = cls(params, backend=backend, **kw)

    def run():
        for k in range(100):
            opt.step(grads[k % 4])

    return params, opt, run


@pytest.mark.parametrize("backend", BACKENDS)
def test_four_optimizers_on_four_threads_equal_serial(backend):
    serial = [_job(i, backend) for i in range(4)]
    for _, _, run in serial:
        run()
    threaded = [_job(i, backend) for i in range(4)]
    errors = []

    def guarded(run):
        try:
            run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(run,)) for _, _, run in threaded]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (ps, so, _), (pt, to, _) in zip(serial, threaded):
        assert so.step_count == to.step_count == 100
        for a, b in zip(ps, pt):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_optimizer_from_two_threads_raises(backend):
    w = np.zeros(1000)
    opt = fastopt.Adam([w], backend=backend)
    inside, release = threading.Event(), threading.Event()

    def hold(o, g):  # a pre-hook that keeps the first thread inside step()
        inside.set()
        assert release.wait(10)

    handle = opt.register_step_pre_hook(hold)
    t = threading.Thread(target=opt.step, args=([np.ones(1000)],))
    t.start()
    assert inside.wait(10)
    try:
        with pytest.raises(RuntimeError, match="two threads at once"):
            opt.step([np.full(1000, 5.0)])
        with pytest.raises(RuntimeError, match="two threads at once"):
            opt.load_state_dict(opt.state_dict())
    finally:
        release.set()
        t.join()
    handle.remove()
    # Only the first thread's step happened, and the optimizer is usable again.
    ref = np.zeros(1000)
    fastopt.Adam([ref], backend=backend).step([np.ones(1000)])
    assert opt.step_count == 1 and w.tobytes() == ref.tobytes()
    opt.step([np.ones(1000)])
    assert opt.step_count == 2


def test_lock_is_released_after_an_error():
    opt = fastopt.SGD([np.zeros(3)])
    with pytest.raises(ValueError):
        opt.step([np.zeros(4)])
    opt.step([np.zeros(3)])
    assert opt.step_count == 1


def test_copy_and_pickle_still_work():
    w = np.arange(3.0)
    opt = fastopt.Adam([w])
    opt.step([np.ones(3)])
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        clone.step([np.ones(3)])
        assert clone.step_count == 2
    assert opt.step_count == 1
