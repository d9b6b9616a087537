// Fit y = 2x - 1 by least squares with fastopt's Adam, from C++.
//
// From a checkout:    cmake -S examples/cpp -B build/ex-cpp -DFASTOPT_CHECKOUT=$PWD
// From an install:    cmake -S examples/cpp -B build/ex-cpp -Dfastopt_DIR=DIR
//                     (DIR: python -c "import fastopt; print(fastopt.get_cmake_dir())")
// Then:               cmake --build build/ex-cpp && build/ex-cpp/fit_line
#include <fastopt/fastopt.hpp>

#include <cstdio>
#include <vector>

int main() {
  const int N = 16;
  double x[N], y[N];
  for (int k = 0; k < N; ++k) {
    x[k] = k / 8.0 - 1.0;
    y[k] = 2.0 * x[k] - 1.0;
  }
  std::vector<double> w(2, 0.0), g(2), m(2, 0.0), v(2, 0.0);  // Adam's state starts at zero
  fastopt::AdamOptions opt;  // torch.optim.Adam's defaults, then:
  opt.lr = 0.05;
  for (std::int64_t t = 1; t <= 300; ++t) {  // the step is 1-based, as torch's
    double g0 = 0.0, g1 = 0.0;               // gradient of mean((w0 x + w1 - y)^2) / 2
    for (int k = 0; k < N; ++k) {
      const double err = w[0] * x[k] + w[1] - y[k];
      g0 += err * x[k];
      g1 += err;
    }
    g[0] = g0 / N;
    g[1] = g1 / N;
    fastopt::adam(w.data(), g.data(), m.data(), v.data(), nullptr, w.size(), t, opt);
  }
  for (std::size_t i = 0; i < w.size(); ++i) std::printf("w[%zu] = %a (%.6f)\n", i, w[i], w[i]);
  // Invalid options throw std::invalid_argument before anything is written.
  try {
    opt.beta1 = 1.0;
    fastopt::adam(w.data(), g.data(), m.data(), v.data(), nullptr, w.size(), 301, opt);
  } catch (const std::invalid_argument& e) {
    std::printf("rejected: %s\n", e.what());
  }
  return 0;
}
