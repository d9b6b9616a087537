/* The test case format of the drivers (tests/test_embedding.py writes it), shared by
 * driver.c and driver.cpp.  C99 and C++.
 *
 * Input:  int64 ncases, then per case a case_head, nopts case_option records, then
 *         T arrays[4][n] (param, state slot 0..2) and T grads[nsteps][n].
 * Output: per case int64 rc (0, or the error code), char msg[256], double carried[2] (the
 *         carried values after the steps: NAdam's mu_product, ASGD's eta and mu), T
 *         arrays[4][n].
 *
 * Options are passed by name, state arrays and carried values by role (the C/C++ names of
 * fastopt/optimizers.h), so that the drivers call every optimizer through the table's
 * lists; a name the table asks for and the case lacks stops the driver (exit status 3). */
#ifndef FASTOPT_TEST_DRIVER_IO_H
#define FASTOPT_TEST_DRIVER_IO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct case_head {
  char opt[16]; /* the optimizer: a FASTOPT_OPTIMIZERS name, or adamw */
  int64_t elem; /* 4 (float) or 8 (double) */
  int64_t n, step0, nsteps, nopts;
  int64_t has[5];            /* param, grad, state slot 0..2: passed (1) or null (0) */
  int64_t has_carried[2];    /* carried value 0..1 passed (1) or null (0) */
  double carried[2];         /* the carried values before the first step */
  char roles[3][24];         /* the role of each state slot */
  char carried_roles[2][24]; /* the role of each carried value */
} case_head;

typedef struct case_option {
  char name[24];
  double value;
} case_option;

typedef struct test_case {
  case_head h;
  case_option opts[16];
} test_case;

/* The value of option `name`; stops the driver if the case has none. */
static double case_value(const test_case* c, const char* name) {
  int64_t i;
  for (i = 0; i < c->h.nopts; ++i)
    if (strcmp(c->opts[i].name, name) == 0) return c->opts[i].value;
  fprintf(stderr, "driver: case for %s has no option %s\n", c->h.opt, name);
  exit(3);
}

/* The state array of role `role` in `arrays` (slot k after the param), or NULL. */
static void* case_slot(const test_case* c, unsigned char* arrays, const char* role) {
  int k;
  for (k = 0; k < 3; ++k)
    if (strcmp(c->h.roles[k], role) == 0)
      return c->h.has[k + 2] ? arrays + (size_t)(k + 1) * (size_t)c->h.n * (size_t)c->h.elem : NULL;
  fprintf(stderr, "driver: case for %s has no state %s\n", c->h.opt, role);
  exit(3);
}

/* The carried value of role `role` in `carried` (value k), or NULL. */
static double* case_carried(const test_case* c, double* carried, const char* role) {
  int k;
  for (k = 0; k < 2; ++k)
    if (strcmp(c->h.carried_roles[k], role) == 0) return c->h.has_carried[k] ? carried + k : NULL;
  fprintf(stderr, "driver: case for %s has no carried value %s\n", c->h.opt, role);
  exit(3);
}

static void read_or_die(FILE* in, void* p, size_t bytes) {
  if (bytes && fread(p, 1, bytes, in) != bytes) {
    fprintf(stderr, "driver: short input\n");
    exit(2);
  }
}

static void read_case(FILE* in, test_case* c) {
  read_or_die(in, &c->h, sizeof c->h);
  if (c->h.nopts < 0 || c->h.nopts > 16) {
    fprintf(stderr, "driver: bad nopts\n");
    exit(2);
  }
  read_or_die(in, c->opts, (size_t)c->h.nopts * sizeof c->opts[0]);
}

/* One step of case c on `arrays` (param, state slots) with gradient `grad` (NULL when not
 * passed) and the carried values `carried` (2): returns 0 or an error code, with its
 * message in msg. */
typedef int64_t (*case_step)(const test_case* c, unsigned char* arrays, const unsigned char* grad,
                             double* carried, int64_t t, char* msg, size_t msg_size);

/* Runs every case of file `inpath` with `step`, writes the results to `outpath`. */
static int run_cases(const char* inpath, const char* outpath, case_step step) {
  FILE* in = fopen(inpath, "rb");
  FILE* out = fopen(outpath, "wb");
  int64_t ncases = 0, k, s;
  if (!in || !out) return 2;
  read_or_die(in, &ncases, sizeof ncases);
  for (k = 0; k < ncases; ++k) {
    test_case c;
    size_t n, es, asize, gsize;
    unsigned char *a, *g;
    int64_t rc = 0;
    double carried[2];
    char msg[256];
    read_case(in, &c);
    n = (size_t)c.h.n;
    es = (size_t)c.h.elem;
    asize = 4 * n * es;
    gsize = (size_t)c.h.nsteps * n * es;
    a = (unsigned char*)malloc(asize + 1);
    g = (unsigned char*)malloc(gsize + 1);
    read_or_die(in, a, asize);
    read_or_die(in, g, gsize);
    memcpy(carried, c.h.carried, sizeof carried);
    memset(msg, 0, sizeof msg);
    for (s = 0; s < c.h.nsteps && rc == 0; ++s)
      rc = step(&c, a, c.h.has[1] ? g + (size_t)s * n * es : NULL, carried, c.h.step0 + s, msg,
                sizeof msg - 1);
    fwrite(&rc, sizeof rc, 1, out);
    fwrite(msg, 1, sizeof msg, out);
    fwrite(carried, sizeof carried[0], 2, out);
    fwrite(a, 1, asize, out);
    free(a);
    free(g);
  }
  fclose(in);
  fclose(out);
  return 0;
}

#endif
