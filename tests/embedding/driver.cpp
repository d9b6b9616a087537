// Test consumer of the C++ API (tests/test_embedding.py): reads cases from a binary file,
// runs the steps with fastopt::sgd/adagrad/rmsprop/adam/adamw, writes the results.
//
// Input:  int64 ncases, then per case: int64 opt (0 sgd, 1 adagrad, 2 rmsprop, 3 adam,
//         4 adamw), elem (4 or 8), n, step0, nsteps; double d[6]; int64 b[4]; int64 has[5]
//         (param, grad, state 0..2 passed or null); T param[n], T state[3][n],
//         T grads[nsteps][n].  Options by optimizer (d | b):
//           sgd      lr momentum dampening weight_decay | nesterov maximize
//           adagrad  lr lr_decay weight_decay eps       | maximize
//           rmsprop  lr alpha eps weight_decay momentum | centered maximize
//           adam(w)  lr beta1 beta2 eps weight_decay    | amsgrad maximize decoupled
// Output: per case int64 rc (0, 1 invalid_argument, 2 other), char msg[256], T param[n],
//         T state[3][n].
#include <fastopt/fastopt.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Case {
  std::int64_t opt, elem, n, step0, nsteps;
  double d[6];
  std::int64_t b[4];
  std::int64_t has[5];
};

FILE* in;
FILE* out;

void read(void* p, std::size_t bytes) {
  if (bytes && std::fread(p, 1, bytes, in) != bytes) throw std::runtime_error("short input");
}

template <class T>
void run(const Case& c) {
  const std::size_t n = static_cast<std::size_t>(c.n);
  std::vector<T> a(4 * n), g(static_cast<std::size_t>(c.nsteps) * n);
  read(a.data(), a.size() * sizeof(T));
  read(g.data(), g.size() * sizeof(T));
  T* p = c.has[0] ? a.data() : nullptr;
  T* s0 = c.has[2] ? a.data() + n : nullptr;
  T* s1 = c.has[3] ? a.data() + 2 * n : nullptr;
  T* s2 = c.has[4] ? a.data() + 3 * n : nullptr;
  std::int64_t rc = 0;
  std::string msg;
  try {
    for (std::int64_t s = 0; s < c.nsteps; ++s) {
      const T* gs = c.has[1] ? g.data() + static_cast<std::size_t>(s) * n : nullptr;
      const std::int64_t t = c.step0 + s;
      if (c.opt == 0) {
        fastopt::SGDOptions o;
        o.lr = c.d[0]; o.momentum = c.d[1]; o.dampening = c.d[2]; o.weight_decay = c.d[3];
        o.nesterov = c.b[0] != 0; o.maximize = c.b[1] != 0;
        fastopt::sgd(p, gs, s0, n, t, o);
      } else if (c.opt == 1) {
        fastopt::AdagradOptions o;
        o.lr = c.d[0]; o.lr_decay = c.d[1]; o.weight_decay = c.d[2]; o.eps = c.d[3];
        o.maximize = c.b[0] != 0;
        fastopt::adagrad(p, gs, s0, n, t, o);
      } else if (c.opt == 2) {
        fastopt::RMSpropOptions o;
        o.lr = c.d[0]; o.alpha = c.d[1]; o.eps = c.d[2]; o.weight_decay = c.d[3];
        o.momentum = c.d[4]; o.centered = c.b[0] != 0; o.maximize = c.b[1] != 0;
        fastopt::rmsprop(p, gs, s0, s1, s2, n, t, o);
      } else if (c.opt == 3) {
        fastopt::AdamOptions o;
        o.lr = c.d[0]; o.beta1 = c.d[1]; o.beta2 = c.d[2]; o.eps = c.d[3];
        o.weight_decay = c.d[4]; o.amsgrad = c.b[0] != 0; o.maximize = c.b[1] != 0;
        o.decoupled_weight_decay = c.b[2] != 0;
        fastopt::adam(p, gs, s0, s1, s2, n, t, o);
      } else {
        fastopt::AdamWOptions o;
        o.lr = c.d[0]; o.beta1 = c.d[1]; o.beta2 = c.d[2]; o.eps = c.d[3];
        o.weight_decay = c.d[4]; o.amsgrad = c.b[0] != 0; o.maximize = c.b[1] != 0;
        fastopt::adamw<T>(p, gs, s0, s1, s2, n, t, o);
      }
    }
  } catch (const std::invalid_argument& e) {
    rc = 1;
    msg = e.what();
  } catch (const std::exception& e) {
    rc = 2;
    msg = e.what();
  }
  char buf[256] = {};
  std::strncpy(buf, msg.c_str(), sizeof buf - 1);
  std::fwrite(&rc, sizeof rc, 1, out);
  std::fwrite(buf, 1, sizeof buf, out);
  std::fwrite(a.data(), sizeof(T), a.size(), out);
}

// Checks the file format cannot express: overlapping arrays are refused with nothing
// written; nullptr for unused state; the defaults are torch's.  Prints "ok" or the failure.
int self_check() {
  std::vector<double> w(8, 1.0), m(8, 0.0), v(8, 0.0), g(8, 0.5);
  const std::vector<double> w0 = w;
  int bad = 0;
  auto expect_refused = [&](const char* what, auto&& f) {
    try {
      f();
      std::printf("%s: not refused\n", what);
      ++bad;
    } catch (const std::invalid_argument& e) {
      if (w != w0) { std::printf("%s: refused (%s) but wrote\n", what, e.what()); ++bad; }
    }
  };
  expect_refused("param == exp_avg", [&] { fastopt::adam(w.data(), g.data(), w.data(), v.data(), nullptr, 8, 1); });
  expect_refused("grad overlaps exp_avg_sq", [&] { fastopt::adam(w.data(), v.data() + 4, m.data(), v.data(), nullptr, 8, 1); });
  expect_refused("param overlaps momentum_buffer", [&] {
    fastopt::SGDOptions o;
    o.momentum = 0.9;
    fastopt::sgd(w.data(), g.data(), w.data() + 3, 4, 1, o);
  });
  // A grad may be read by two calls; unused state pointers are ignored, even if they alias.
  fastopt::sgd(w.data(), g.data(), w.data(), 8, 1);  // momentum 0: the buffer is unused
  if (w == w0) { std::printf("sgd did not update\n"); ++bad; }
  const fastopt::SGDOptions s;
  const fastopt::AdagradOptions a;
  const fastopt::RMSpropOptions r;
  const fastopt::AdamOptions d;
  const fastopt::AdamWOptions dw;
  if (!(s.lr == 1e-3 && s.momentum == 0 && s.dampening == 0 && s.weight_decay == 0 && !s.nesterov && !s.maximize &&
        a.lr == 1e-2 && a.lr_decay == 0 && a.weight_decay == 0 && a.eps == 1e-10 && !a.maximize &&
        r.lr == 1e-2 && r.alpha == 0.99 && r.eps == 1e-8 && r.weight_decay == 0 && r.momentum == 0 && !r.centered && !r.maximize &&
        d.lr == 1e-3 && d.beta1 == 0.9 && d.beta2 == 0.999 && d.eps == 1e-8 && d.weight_decay == 0 && !d.amsgrad && !d.maximize && !d.decoupled_weight_decay &&
        dw.weight_decay == 1e-2 && fastopt::to_adam(dw).decoupled_weight_decay)) {
    std::printf("defaults differ from torch's\n");
    ++bad;
  }
  if (!bad) std::printf("ok\n");
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--self-check") == 0) return self_check();
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
    return 2;
  }
  in = std::fopen(argv[1], "rb");
  out = std::fopen(argv[2], "wb");
  if (!in || !out) return 2;
  std::int64_t ncases = 0;
  read(&ncases, sizeof ncases);
  for (std::int64_t k = 0; k < ncases; ++k) {
    Case c;
    read(&c, sizeof c);
    if (c.elem == 4) run<float>(c);
    else run<double>(c);
  }
  std::fclose(out);
  return 0;
}
