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

}  // namespace

int main(int argc, char** argv) {
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
