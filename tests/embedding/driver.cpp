// Test consumer of the C++ API (tests/test_embedding.py): runs the cases of driver_io.h through
// fastopt::<name> (and fastopt::adamw), every optimizer through the lists of
// fastopt/optimizers.h.  --self-check: what the file format cannot express; --defaults:
// every default options struct, one "optimizer option value" line per field.
#include <cstdio>
#include <cstring>
#include <fastopt/fastopt.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "driver_io.h"

namespace {

#define SET_REAL(option, def, rule) o.option = case_value(c, #option);
#define SET_FLAG(option, def) o.option = case_value(c, #option) != 0;
#define ARRAY(T, x) static_cast<T*>(case_slot(c, arrays, #x)),
#define ARRAY_IF(T, x, option) ARRAY(T, x)
#define CARRIED(T, x, rule, start) case_carried(c, carried, #x),
#define CALL(name, Cpp)                                                                 \
  if (std::strcmp(c->h.opt, #name) == 0) {                                              \
    fastopt::Cpp##Options o;                                                            \
    FASTOPT_OPTIONS_##name(SET_REAL, SET_FLAG)                                          \
        fastopt::name(p, g, FASTOPT_STATE_##name(ARRAY, ARRAY_IF, CARRIED, T) n, t, o); \
    return 0;                                                                           \
  }

template <class T>
std::int64_t step_as(const test_case* c, unsigned char* arrays, const unsigned char* grad,
                     double* carried, std::int64_t t) {
  T* p = c->h.has[0] ? reinterpret_cast<T*>(arrays) : nullptr;
  const T* g = reinterpret_cast<const T*>(grad);
  const std::size_t n = static_cast<std::size_t>(c->h.n);
  FASTOPT_OPTIMIZERS(CALL)
  CALL(adamw, AdamW)
  std::fprintf(stderr, "driver: unknown optimizer %s\n", c->h.opt);
  std::exit(3);
}

std::int64_t step(const test_case* c, unsigned char* arrays, const unsigned char* grad,
                  double* carried, std::int64_t t, char* msg, std::size_t msg_size) {
  try {
    return c->h.elem == 4 ? step_as<float>(c, arrays, grad, carried, t)
                          : step_as<double>(c, arrays, grad, carried, t);
  } catch (const std::invalid_argument& e) {
    std::strncpy(msg, e.what(), msg_size);
    return 1;
  } catch (const std::exception& e) {
    std::strncpy(msg, e.what(), msg_size);
    return 2;
  }
}

#define PRINT_REAL(option, def, rule) std::printf("%s %s %.17g\n", name, #option, o.option);
#define PRINT_FLAG(option, def) std::printf("%s %s %d\n", name, #option, int(o.option));
#define PRINT_DEFAULTS(name_, Cpp)                  \
  {                                                 \
    const char* name = #name_;                      \
    const fastopt::Cpp##Options o;                  \
    FASTOPT_OPTIONS_##name_(PRINT_REAL, PRINT_FLAG) \
  }

int defaults() {
  FASTOPT_OPTIMIZERS(PRINT_DEFAULTS) {  // AdamW: adam() with to_adam's options
    const char* name = "adamw";
    const fastopt::AdamOptions o = fastopt::to_adam(fastopt::AdamWOptions());
    FASTOPT_OPTIONS_adam(PRINT_REAL, PRINT_FLAG)
  }
  return 0;
}

// Overlapping arrays are refused with nothing written; nullptr for unused state.
int self_check() {
  std::vector<double> w(8, 1.0), m(8, 0.0), v(8, 0.0), g(8, 0.5);
  const std::vector<double> w0 = w;
  double mu = 1.0, mu0 = 0.0;
  int bad = 0;
  auto expect_refused = [&](const char* what, auto&& f) {
    try {
      f();
      std::printf("%s: not refused\n", what);
      ++bad;
    } catch (const std::invalid_argument& e) {
      if (w != w0 || mu != 1.0 || mu0 != 0.0 || m != std::vector<double>(8, 0.0)) {
        std::printf("%s: refused (%s) but wrote\n", what, e.what());
        ++bad;
      }
    }
  };
  expect_refused("param == exp_avg",
                 [&] { fastopt::adam(w.data(), g.data(), w.data(), v.data(), nullptr, 8, 1); });
  expect_refused("grad overlaps exp_avg_sq",
                 [&] { fastopt::adam(w.data(), v.data() + 4, m.data(), v.data(), nullptr, 8, 1); });
  expect_refused("param overlaps momentum_buffer", [&] {
    fastopt::SGDOptions o;
    o.momentum = 0.9;
    fastopt::sgd(w.data(), g.data(), w.data() + 3, 4, 1, o);
  });
  expect_refused("mu_product inside exp_avg", [&] {
    fastopt::nadam(w.data(), g.data(), m.data(), v.data(), m.data() + 2, 8, 1);
  });
  expect_refused("asgd eta == mu",
                 [&] { fastopt::asgd(w.data(), g.data(), m.data(), &mu, &mu, 8, 2); });
  expect_refused("asgd mu inside param",
                 [&] { fastopt::asgd(w.data(), g.data(), m.data(), &mu0, w.data() + 7, 8, 2); });
  expect_refused("rprop step_size_buffer overlaps prev",
                 [&] { fastopt::rprop(w.data(), g.data(), m.data(), m.data() + 1, 7, 2); });
  expect_refused("adadelta acc_delta == square_avg",
                 [&] { fastopt::adadelta(w.data(), g.data(), v.data(), v.data(), 8, 1); });
  // A grad may be read by two calls; unused state pointers are ignored, even if they alias.
  fastopt::sgd(w.data(), g.data(), w.data(), 8, 1);  // momentum 0: the buffer is unused
  if (w == w0) {
    std::printf("sgd did not update\n");
    ++bad;
  }
  if (!bad) std::printf("ok\n");
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--self-check") == 0) return self_check();
  if (argc == 2 && std::strcmp(argv[1], "--defaults") == 0) return defaults();
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
    return 2;
  }
  return run_cases(argv[1], argv[2], step);
}
