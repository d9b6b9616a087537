"""A user script in the README's style: it must pass `mypy --strict` (test_contract.py)."""

import numpy as np

import fastopt
import fastopt.kernels

rng = np.random.default_rng(0)
X = rng.standard_normal((512, 20))
y = X @ rng.standard_normal(20) + 0.1 * rng.standard_normal(512)
params = {"w": np.zeros(20), "b": np.zeros(1)}
opt = fastopt.Adam(params, lr=fastopt.schedules.cosine(0.05, total_steps=200))
for _step in range(200):
    err = X @ params["w"] + params["b"] - y
    grads = {"w": X.T @ err / len(y), "b": np.array([err.mean()])}
    opt.step(grads)
print(opt.last_lr[0] + 1.0)

w = np.zeros(3)
sgd = fastopt.SGD([w], lr=lambda k: 0.1 * 0.99**k, momentum=0.9, nesterov=True)
sgd.step([np.ones(3)])
groups = [{"params": [np.zeros(2)], "lr": 0.1}, {"params": [np.zeros(2)]}]
rms = fastopt.RMSprop(groups, lr=1e-2, centered=True)
rms.step([np.ones(2), np.ones(2)])
aw = fastopt.AdamW([w], betas=(0.9, lambda k: 0.999), weight_decay=0.01, nonfinite="skip")
ag = fastopt.Adagrad([w], lr_decay=0.01)
sd = aw.state_dict()
aw.load_state_dict(sd)
m, v = np.zeros_like(w), np.zeros_like(w)
fastopt.kernels.adam(w, np.ones(3), m, v, step=1, lr=1e-3)
fastopt.kernels.sgd([w], [np.ones(3)], step=1)
st = opt.state["w"]["exp_avg"]
print(st.sum())
