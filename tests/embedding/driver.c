/* Test consumer of the C ABI (tests/test_embedding.py): the same input and output as
 * driver.cpp (see there), through fastopt_<name>_f32 / _f64 and fastopt_last_error. */
#include <fastopt/fastopt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int64_t opt, elem, n, step0, nsteps;
  double d[6];
  int64_t b[4];
  int64_t has[5];
} test_case;

static FILE* in;
static FILE* out;

static void read_or_die(void* p, size_t bytes) {
  if (bytes && fread(p, 1, bytes, in) != bytes) {
    fprintf(stderr, "short input\n");
    exit(2);
  }
}

static int step_f32(const test_case* c, float* p, const float* g, float* s0, float* s1,
                    float* s2, int64_t t) {
  size_t n = (size_t)c->n;
  if (c->opt == 0) {
    fastopt_sgd_options o = fastopt_sgd_default_options();
    o.lr = c->d[0]; o.momentum = c->d[1]; o.dampening = c->d[2]; o.weight_decay = c->d[3];
    o.nesterov = (int)c->b[0]; o.maximize = (int)c->b[1];
    return fastopt_sgd_f32(p, g, s0, n, t, &o);
  } else if (c->opt == 1) {
    fastopt_adagrad_options o = fastopt_adagrad_default_options();
    o.lr = c->d[0]; o.lr_decay = c->d[1]; o.weight_decay = c->d[2]; o.eps = c->d[3];
    o.maximize = (int)c->b[0];
    return fastopt_adagrad_f32(p, g, s0, n, t, &o);
  } else if (c->opt == 2) {
    fastopt_rmsprop_options o = fastopt_rmsprop_default_options();
    o.lr = c->d[0]; o.alpha = c->d[1]; o.eps = c->d[2]; o.weight_decay = c->d[3];
    o.momentum = c->d[4]; o.centered = (int)c->b[0]; o.maximize = (int)c->b[1];
    return fastopt_rmsprop_f32(p, g, s0, s1, s2, n, t, &o);
  } else {
    fastopt_adam_options o = c->opt == 3 ? fastopt_adam_default_options()
                                         : fastopt_adamw_default_options();
    o.lr = c->d[0]; o.beta1 = c->d[1]; o.beta2 = c->d[2]; o.eps = c->d[3];
    o.weight_decay = c->d[4]; o.amsgrad = (int)c->b[0]; o.maximize = (int)c->b[1];
    if (c->opt == 3) o.decoupled_weight_decay = (int)c->b[2];
    return fastopt_adam_f32(p, g, s0, s1, s2, n, t, &o);
  }
}

static int step_f64(const test_case* c, double* p, const double* g, double* s0, double* s1,
                    double* s2, int64_t t) {
  size_t n = (size_t)c->n;
  if (c->opt == 0) {
    fastopt_sgd_options o = fastopt_sgd_default_options();
    o.lr = c->d[0]; o.momentum = c->d[1]; o.dampening = c->d[2]; o.weight_decay = c->d[3];
    o.nesterov = (int)c->b[0]; o.maximize = (int)c->b[1];
    return fastopt_sgd_f64(p, g, s0, n, t, &o);
  } else if (c->opt == 1) {
    fastopt_adagrad_options o = fastopt_adagrad_default_options();
    o.lr = c->d[0]; o.lr_decay = c->d[1]; o.weight_decay = c->d[2]; o.eps = c->d[3];
    o.maximize = (int)c->b[0];
    return fastopt_adagrad_f64(p, g, s0, n, t, &o);
  } else if (c->opt == 2) {
    fastopt_rmsprop_options o = fastopt_rmsprop_default_options();
    o.lr = c->d[0]; o.alpha = c->d[1]; o.eps = c->d[2]; o.weight_decay = c->d[3];
    o.momentum = c->d[4]; o.centered = (int)c->b[0]; o.maximize = (int)c->b[1];
    return fastopt_rmsprop_f64(p, g, s0, s1, s2, n, t, &o);
  } else {
    fastopt_adam_options o = c->opt == 3 ? fastopt_adam_default_options()
                                         : fastopt_adamw_default_options();
    o.lr = c->d[0]; o.beta1 = c->d[1]; o.beta2 = c->d[2]; o.eps = c->d[3];
    o.weight_decay = c->d[4]; o.amsgrad = (int)c->b[0]; o.maximize = (int)c->b[1];
    if (c->opt == 3) o.decoupled_weight_decay = (int)c->b[2];
    return fastopt_adam_f64(p, g, s0, s1, s2, n, t, &o);
  }
}

/* What the file format cannot express: overlap refused with nothing written, NULL options
 * are the defaults, the default structs are torch's.  Prints "ok" or the failures. */
static int self_check(void) {
  double w[8], m[8] = {0}, v[8] = {0}, g[8], w2[8], m2[8] = {0}, v2[8] = {0};
  fastopt_sgd_options s = fastopt_sgd_default_options();
  fastopt_adagrad_options a = fastopt_adagrad_default_options();
  fastopt_rmsprop_options r = fastopt_rmsprop_default_options();
  fastopt_adam_options d = fastopt_adam_default_options();
  fastopt_adam_options dw = fastopt_adamw_default_options();
  int i, bad = 0, rc;
  for (i = 0; i < 8; ++i) { w[i] = w2[i] = 1.0; g[i] = 0.5; }
  rc = fastopt_adam_f64(w, g, w, v, NULL, 8, 1, NULL);
  if (rc != FASTOPT_INVALID_ARGUMENT || strstr(fastopt_last_error(), "share memory") == NULL) {
    printf("overlap: rc=%d %s\n", rc, fastopt_last_error());
    ++bad;
  }
  for (i = 0; i < 8; ++i) if (w[i] != 1.0) { printf("overlap: wrote\n"); ++bad; break; }
  /* NULL options: the defaults */
  if (fastopt_adam_f64(w, g, m, v, NULL, 8, 1, NULL) != 0 ||
      fastopt_adam_f64(w2, g, m2, v2, NULL, 8, 1, &d) != 0 || memcmp(w, w2, sizeof w) != 0) {
    printf("NULL options differ from the defaults\n");
    ++bad;
  }
  if (!(s.lr == 1e-3 && s.momentum == 0 && s.dampening == 0 && s.weight_decay == 0 && !s.nesterov && !s.maximize &&
        a.lr == 1e-2 && a.lr_decay == 0 && a.weight_decay == 0 && a.eps == 1e-10 && !a.maximize &&
        r.lr == 1e-2 && r.alpha == 0.99 && r.eps == 1e-8 && r.weight_decay == 0 && r.momentum == 0 && !r.centered && !r.maximize &&
        d.lr == 1e-3 && d.beta1 == 0.9 && d.beta2 == 0.999 && d.eps == 1e-8 && d.weight_decay == 0 && !d.amsgrad && !d.maximize && !d.decoupled_weight_decay &&
        dw.lr == 1e-3 && dw.weight_decay == 1e-2 && dw.decoupled_weight_decay && !dw.amsgrad)) {
    printf("defaults differ from torch's\n");
    ++bad;
  }
  if (!bad) printf("ok\n");
  return bad ? 1 : 0;
}

int main(int argc, char** argv) {
  int64_t ncases = 0, k, s;
  if (argc == 2 && strcmp(argv[1], "--self-check") == 0) return self_check();
  if (argc != 3) {
    fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
    return 2;
  }
  in = fopen(argv[1], "rb");
  out = fopen(argv[2], "wb");
  if (!in || !out) return 2;
  read_or_die(&ncases, sizeof ncases);
  for (k = 0; k < ncases; ++k) {
    test_case c;
    size_t n, es, asize, gsize;
    unsigned char *a, *g;
    int64_t rc = 0;
    char msg[256];
    read_or_die(&c, sizeof c);
    n = (size_t)c.n;
    es = (size_t)c.elem;
    asize = 4 * n * es;
    gsize = (size_t)c.nsteps * n * es;
    a = (unsigned char*)malloc(asize + 1);
    g = (unsigned char*)malloc(gsize + 1);
    read_or_die(a, asize);
    read_or_die(g, gsize);
    for (s = 0; s < c.nsteps && rc == 0; ++s) {
      void* p = c.has[0] ? a : NULL;
      void* s0 = c.has[2] ? a + n * es : NULL;
      void* s1 = c.has[3] ? a + 2 * n * es : NULL;
      void* s2 = c.has[4] ? a + 3 * n * es : NULL;
      const void* gs = c.has[1] ? g + (size_t)s * n * es : NULL;
      if (es == 4)
        rc = step_f32(&c, (float*)p, (const float*)gs, (float*)s0, (float*)s1, (float*)s2,
                      c.step0 + s);
      else
        rc = step_f64(&c, (double*)p, (const double*)gs, (double*)s0, (double*)s1,
                      (double*)s2, c.step0 + s);
    }
    memset(msg, 0, sizeof msg);
    if (rc != 0) strncpy(msg, fastopt_last_error(), sizeof msg - 1);
    fwrite(&rc, sizeof rc, 1, out);
    fwrite(msg, 1, sizeof msg, out);
    fwrite(a, 1, asize, out);
    free(a);
    free(g);
  }
  fclose(out);
  return 0;
}
