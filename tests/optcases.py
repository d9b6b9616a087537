"""Every option combination of every optimizer, shared by the cross-backend tests."""

import itertools

import fastopt


def _combos(**axes):
    keys = list(axes)
    for values in itertools.product(*(axes[k] for k in keys)):
        yield dict(zip(keys, values))


def all_cases():
    cases = []
    for kw in _combos(
        momentum=[0.0, 0.9],
        dampening=[0.0, 0.3],
        nesterov=[False, True],
        weight_decay=[0.0, 0.01],
        maximize=[False, True],
    ):
        if kw["nesterov"] and (kw["momentum"] == 0 or kw["dampening"] != 0):
            continue
        if kw["momentum"] == 0 and kw["dampening"] != 0:
            continue
        cases.append((fastopt.SGD, dict(lr=0.05, **kw)))
    for kw in _combos(
        lr_decay=[0.0, 0.05],
        weight_decay=[0.0, 0.01],
        initial_accumulator_value=[0.0, 0.1],
        maximize=[False, True],
    ):
        cases.append((fastopt.Adagrad, dict(lr=0.05, **kw)))
    for kw in _combos(
        centered=[False, True],
        momentum=[0.0, 0.5],
        weight_decay=[0.0, 0.01],
        maximize=[False, True],
    ):
        cases.append((fastopt.RMSprop, dict(lr=0.005, alpha=0.9, **kw)))
    for cls in (fastopt.Adam, fastopt.AdamW):
        for kw in _combos(amsgrad=[False, True], weight_decay=[0.0, 0.05], maximize=[False, True]):
            cases.append((cls, dict(lr=0.01, betas=(0.8, 0.95), **kw)))
    for kw in _combos(weight_decay=[0.0, 0.05], eps=[1e-8, 1e-3], maximize=[False, True]):
        cases.append((fastopt.Adamax, dict(lr=0.01, betas=(0.8, 0.95), **kw)))
    for kw in _combos(
        decoupled_weight_decay=[False, True], weight_decay=[0.0, 0.05], maximize=[False, True]
    ):
        if kw["decoupled_weight_decay"] and kw["weight_decay"] == 0:
            continue
        # betas=(0.8, 0.95): rho_t > 5 from step 7 on, so both branches run
        cases.append((fastopt.RAdam, dict(lr=0.01, betas=(0.8, 0.95), **kw)))
    for kw in _combos(
        decoupled_weight_decay=[False, True], weight_decay=[0.0, 0.05], maximize=[False, True]
    ):
        if kw["decoupled_weight_decay"] and kw["weight_decay"] == 0:
            continue
        cases.append((fastopt.NAdam, dict(lr=0.01, betas=(0.8, 0.95), momentum_decay=0.01, **kw)))
    for kw in _combos(rho=[0.9, 0.5], weight_decay=[0.0, 0.01], maximize=[False, True]):
        cases.append((fastopt.Adadelta, dict(lr=0.5, **kw)))
    # step_sizes=(1e-3, 0.05): both clamps bind within the run; etas other than torch's
    for kw in _combos(
        etas=[(0.5, 1.2), (0.3, 1.5)], step_sizes=[(1e-6, 50), (1e-3, 0.05)], maximize=[False, True]
    ):
        cases.append((fastopt.Rprop, dict(lr=0.01, **kw)))
    # t0=30: the average starts moving (mu != 1) within the 120 steps of the backend tests
    for kw in _combos(
        t0=[1e6, 30.0], lambd=[1e-4, 0.05], weight_decay=[0.0, 0.01], maximize=[False, True]
    ):
        cases.append((fastopt.ASGD, dict(lr=0.02, alpha=0.75, **kw)))
    return cases


def case_id(case):
    cls, kw = case
    flags = ",".join(f"{k}={v}" for k, v in kw.items() if k not in ("lr", "alpha", "betas"))
    return f"{cls.__name__}[{flags}]"
