/* Minimise 0.5 * sum_i a_i (w_i - c_i)^2 with fastopt's SGD (Nesterov momentum), from C99.
 *
 * From a checkout:    cmake -S examples/c -B build/ex-c -DFASTOPT_CHECKOUT=$PWD
 * From an install:    cmake -S examples/c -B build/ex-c -Dfastopt_DIR=DIR
 *                     (DIR: python -c "import fastopt; print(fastopt.get_cmake_dir())")
 * Then:               cmake --build build/ex-c && build/ex-c/quadratic
 */
#include <fastopt/fastopt.h>

#include <stdio.h>

#define N 5

int main(void) {
  float w[N] = {0}, g[N], buf[N] = {0}, a[N], c[N];
  fastopt_sgd_options opt = fastopt_sgd_default_options(); /* torch.optim.SGD's defaults */
  int64_t t;
  int i;
  for (i = 0; i < N; ++i) {
    a[i] = 1.0f + (float)i;
    c[i] = (float)i - 2.0f;
  }
  opt.lr = 0.05;
  opt.momentum = 0.9;
  opt.nesterov = 1;
  opt.weight_decay = 1e-3;
  for (t = 1; t <= 100; ++t) { /* the step is 1-based, as torch's */
    for (i = 0; i < N; ++i) g[i] = a[i] * (w[i] - c[i]);
    if (fastopt_sgd_f32(w, g, buf, N, t, &opt) != 0) {
      fprintf(stderr, "fastopt: %s\n", fastopt_last_error());
      return 1;
    }
  }
  for (i = 0; i < N; ++i) printf("w[%d] = %a (%.6f)\n", i, (double)w[i], (double)w[i]);
  /* A rejected call returns non-zero, writes nothing and leaves a message. */
  opt.lr = -1.0;
  if (fastopt_sgd_f32(w, g, buf, N, 101, &opt) != 0) printf("rejected: %s\n", fastopt_last_error());
  return 0;
}
