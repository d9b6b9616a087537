"""A whole training loop in Numba: least-squares regression fitted with fastopt.jit.adam.

The loop (forward pass, gradient, optimizer step) is one ``@numba.njit`` function; the
optimizer step is ``fastopt.jit.adam``, which gives the same bits as
``fastopt.kernels.adam`` (and ``fastopt.Adam``) with the same inputs.  Run:

    python examples/numba_training_loop.py
"""

import numba
import numpy as np

import fastopt
import fastopt.jit


@numba.njit
def grad(w, x, y):
    """The gradient of mean((x @ w - y)**2) and the loss.

    Written as loops: Numba's ``@`` calls SciPy's BLAS, which ``fastopt[numba]`` does not
    need, so the example runs wherever Numba does."""
    n, d = x.shape
    g = np.zeros(d)
    loss = 0.0
    for i in range(n):
        r = -y[i]
        for j in range(d):
            r += x[i, j] * w[j]
        loss += r * r
        for j in range(d):
            g[j] += x[i, j] * r
    return (2.0 / n) * g, loss / n


@numba.njit
def train(w, x, y, steps, lr):
    """Minimise mean((x @ w - y)**2) with Adam; returns the loss of every step."""
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    losses = np.empty(steps)
    for t in range(1, steps + 1):
        g, losses[t - 1] = grad(w, x, y)
        fastopt.jit.adam(w, g, m, v, step=t, lr=lr, betas=(0.9, 0.999))
    return losses


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8))
    w_true = rng.standard_normal(8)
    y = x @ w_true + 0.01 * rng.standard_normal(256)
    w = np.zeros(8)
    losses = train(w, x, y, 500, 0.05)
    print(f"loss: first {losses[0]:.4f}, last {losses[-1]:.6f}")

    # The same run through fastopt.Adam (numpy backend) gives the same bits.
    w2 = np.zeros(8)
    opt = fastopt.Adam([w2], lr=0.05, backend="numpy")
    for _ in range(500):
        opt.step([grad(w2, x, y)[0]])
    print("same bits as fastopt.Adam:", w.tobytes() == w2.tobytes())
    assert losses[-1] < 1e-3 * losses[0]
    assert w.tobytes() == w2.tobytes()


if __name__ == "__main__":
    main()
