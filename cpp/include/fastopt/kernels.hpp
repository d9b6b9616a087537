// fastopt update kernels: plain C++ over raw pointers and a length.
//
// One fused pass over memory per step, no temporaries.  The formulas are PyTorch's
// (torch.optim), written out in the docstrings of python/fastopt/backends/numpy.py, which is
// the readable reference these loops must match.  fastopt/fastopt.hpp is the public C++ API
// over these loops (it computes the derived scalars and checks the options).
//
// Conventions
//   * Every hyperparameter arrives already converted to the array's type T.  Derived
//     scalars (1 - beta, 1 - dampening, bias corrections, step sizes) are computed by the
//     caller in double and cast to T once, as PyTorch does with its Python scalars.
//   * Loop-invariant options (weight decay on/off, momentum, nesterov, amsgrad, ...) are
//     template parameters, so that each loop the compiler vectorises has no branch.
//   * `use_wd` says whether weight decay applies, decided by the caller on the double value
//     (`weight_decay != 0`, as PyTorch), not on its float32 rounding.
//   * `maximize` multiplies the gradient by a sign of +1 or -1 (exact); Adam negates it
//     (below).  The NumPy reference and torch.optim write -g: the same bits, but a NaN
//     gradient's sign, which is not pinned here.  GCC folds negations and products with a
//     constant -1 into one another (after specialising a loop on `maximize`) differently in
//     a vectorised body and its scalar remainder, and per ISA build; a negation written out
//     (`maximize ? -g : g`) came out flipped in the scalar remainder and not in the vector
//     body of the same build (tests/test_half.py compares NaNs met by a NaN gradient as
//     NaNs).
//   * Storage: the parameter and its gradient are stored as P, the state and the arithmetic
//     are T (`Storage<P>::math`): P = T for float and double; P = bf16 or f16 (half
//     precision, bits only) with T = float.  Every kernel reads p[i] and g[i] through
//     `load` (exact widening) and writes p[i] through `store` (one rounding to nearest even
//     per write), in registers: no temporary copy, so a half step moves 2+2 bytes of
//     param and grad instead of 4+4.  For P = T both are the identity (the float32/float64
//     bits are unchanged).  A new kernel writes its loop body once, as a generic lambda
//     over W run by `each<P>(n, body)`: `W::load(p + i)`, `W::load(g + i)`,
//     `W::store(p + i, x)`, `W::loadf`/`W::storef` for the state, `W::splat(c)` for a
//     constant, pick/vabs/fsqrt/maxsel for selects and functions.  W is a vector of
//     Vec<P>::lanes where the build converts P in vectors, else one element; the parameter's
//     type Q is P* or Master<P> (a float32 master copy, read as the parameter and written
//     with it).  Every kernel below but Rprop's (a plain loop over `load(p[i])`,
//     `store(p[i], x)`, whose float32 loop GCC compiled slower as a lambda) does so; a
//     kernel with such a plain loop is left out of in_vectors (cpp/src/isa_kernels.inc).
//
// ISA builds: this header is compiled once per instruction set (cpp/src/kernels_generic.cpp,
// kernels_avx2.cpp, kernels_avx512.cpp, each with its own -m flags) and every copy lives in
// its own namespace fastopt::<FASTOPT_ISA_NS>, so that the linker never merges an AVX-512
// instantiation into the generic path.  For the same reason the header uses no standard
// library templates: only builtins, which are always inlined.  The loops are written for
// the auto-vectoriser (restrict pointers, no branches, -O3 -fno-math-errno so that sqrt and
// division vectorise); GCC emits unaligned vector loads and a scalar remainder loop.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifndef FASTOPT_ISA_NS
#define FASTOPT_ISA_NS generic
#endif

#if defined(__GNUC__)
#define FASTOPT_RESTRICT __restrict__
#else
#define FASTOPT_RESTRICT
#endif

// Before a loop whose iterations are independent (element i touches index i of each array).
#if defined(__clang__)
#define FASTOPT_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define FASTOPT_IVDEP _Pragma("GCC ivdep")
#else
#define FASTOPT_IVDEP
#endif

namespace fastopt {
namespace FASTOPT_ISA_NS {
namespace kernels {

inline float fsqrt(float x) { return __builtin_sqrtf(x); }
inline double fsqrt(double x) { return __builtin_sqrt(x); }

// ---------------------------------------------------------------- storage types
// Half-precision storage, as bits: bfloat16 (the top half of a float32) and IEEE binary16.
// Conversions are branch-free integer code (selects, no table, no libgcc call), so the
// loops vectorise in every ISA build (generic included) and give the same bits everywhere.
// (The avx2/avx512 builds convert float16 with F16C instead, and the avx2 build bfloat16 with
// these functions in their own loops, around the float32 kernel, block by block: see
// run_half_blocked in cpp/src/isa_kernels.inc; the same bits.)
struct bf16 {
  std::uint16_t bits;
};
struct f16 {
  std::uint16_t bits;
};

// The arithmetic type of a storage type and the bit patterns of its finiteness check.
template <class Math, class Bits, Bits kAbsMask, Bits kInfBits>
struct StorageOf {
  typedef Math math;
  typedef Bits bits;
  static constexpr Bits abs_mask = kAbsMask, inf_bits = kInfBits;
};
template <class P>
struct Storage;
template <>
struct Storage<float> : StorageOf<float, std::uint32_t, 0x7fffffffu, 0x7f800000u> {};
template <>
struct Storage<double>
    : StorageOf<double, std::uint64_t, 0x7fffffffffffffffull, 0x7ff0000000000000ull> {};
template <>
struct Storage<bf16> : StorageOf<float, std::uint16_t, 0x7fffu, 0x7f80u> {};
template <>
struct Storage<f16> : StorageOf<float, std::uint16_t, 0x7fffu, 0x7c00u> {};

inline float bits_to_float(std::uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
inline std::uint32_t float_to_bits(float f) {
  std::uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  return u;
}
// c ? a : b on all bits, written as a mask so that the vectoriser sees no control flow.
// (A ternary in the AVX-512 build, where it becomes a masked blend; the other builds' vectorisers
// need the mask form, which they would otherwise see as control flow.  Same bits.)
inline std::uint32_t select(bool c, std::uint32_t a, std::uint32_t b) {
#if defined(__AVX512F__)
  return c ? a : b;
#else
  const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
  return (a & m) | (b & ~m);
#endif
}

inline float load(float x) { return x; }
inline double load(double x) { return x; }
inline void store(float& dst, float x) { dst = x; }
inline void store(double& dst, double x) { dst = x; }

// bfloat16 -> float32: exact (the bits are the top half).
inline float load(bf16 x) { return bits_to_float(static_cast<std::uint32_t>(x.bits) << 16); }
// float32 -> bfloat16, rounded to nearest even; a NaN becomes the quiet NaN 0x7fc0 with its
// sign (as ml_dtypes); overflow rounds to infinity.
inline void store(bf16& dst, float x) {
  const std::uint32_t u = float_to_bits(x);
  const std::uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const std::uint32_t nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
  dst.bits = static_cast<std::uint16_t>(select((u & 0x7fffffffu) > 0x7f800000u, nan, rounded));
}

// binary16 -> float32: exact.  The exponent and mantissa shifted into place and scaled by
// 2^112 (the exponent bias difference) handle normal and subnormal values alike; inf/NaN
// get the all-ones exponent.
inline float load(f16 x) {
  const std::uint32_t h = x.bits, em = h & 0x7fffu;
  const std::uint32_t shifted = em << 13;
  const std::uint32_t scaled = float_to_bits(bits_to_float(shifted) * 0x1p112f);
  return bits_to_float(select(em >= 0x7c00u, shifted | 0x7f800000u, scaled) |
                       ((h & 0x8000u) << 16));
}
// float32 -> binary16, rounded to nearest even (F. Giesen's float_to_half_fast3_rtne):
// subnormal results by a float addition that rounds at the right place, normal ones by an
// integer add of the rebias, half an ulp - 1 and the parity bit; >= 65520 rounds to inf.  A
// NaN keeps its sign and the top 10 bits of its payload (0x7c01 if they are all zero), as
// NumPy's astype(np.float16).
inline void store(f16& dst, float x) {
  const std::uint32_t full = float_to_bits(x);
  const std::uint32_t sign = full & 0x80000000u, u = full ^ sign;
  const std::uint32_t sub = float_to_bits(bits_to_float(u) + 0.5f) - 0x3f000000u;
  const std::uint32_t normal = (u + 0xc8000fffu + ((u >> 13) & 1u)) >> 13;
  const std::uint32_t payload = 0x7c00u | ((u >> 13) & 0x3ffu);
  const std::uint32_t nan = select(payload == 0x7c00u, 0x7c01u, payload);
  std::uint32_t o = select(u < 0x38800000u, sub, normal);
  o = select(u >= 0x47800000u, select(u > 0x7f800000u, nan, 0x7c00u), o);
  dst.bits = static_cast<std::uint16_t>(o | (sign >> 16));
}

// ---------------------------------------------------------------- half precision in vectors
// Where the build has vector conversions (AVX-512F+BW, or AVX2 with F16C), a kernel may
// convert its half param and grad in registers, a float vector of Vec<P>::lanes at a time,
// inside its own loop: no second pass over a block buffer, so the conversions run beside the
// kernel's divisions and square roots instead of before and after them (Adam on float16 at
// 1e5 elements, 1 thread, avx512 build: 44.1 us per step in blocks, 32.9 in vectors, float32
// 32; `FASTOPT_ISA=avx512 python benchmarks/half_precision.py 1e5 300 --threads 1`).
// Vec<P>::ok says whether the build has it; V is the float vector; load/store convert P
// (the same bits as the scalar load and store above: exact widening, one rounding to nearest
// even, NaN as there), loadf/storef move the float32 state, splat broadcasts a constant.
// The loop body is one generic lambda over W = Vec<P> or One<P> (each(), below): IEEE
// operations lane by lane, the same bits as the scalar loop, which finishes the remainder.
// fsqrt and maxsel have vector overloads; maxsel(a, b) is a > b ? a : b (b if either is NaN),
// which is what VMAXPS computes.  float16 in the avx2 and avx512 builds; bfloat16 in the
// avx512bf16 build (VCVTNEPS2BF16) and the avx2 build (integer steps on 16 lanes at a time,
// below), not in the avx512 build: its rounding in integer vector steps measured no faster
// than its scalar loop (41.3 against 40.4 us per Adam step at 1e5 elements, an A/B of two
// builds with the same command), which it keeps.
inline float maxsel(float a, float b) { return a > b ? a : b; }
inline double maxsel(double a, double b) { return a > b ? a : b; }
// pick(c, a, b) is c ? a : b, lane by lane for vectors (c: a comparison of two vectors, or
// of two such comparisons combined with |); vabs(x) clears the sign bit.
inline float pick(bool c, float a, float b) { return c ? a : b; }
inline double pick(bool c, double a, double b) { return c ? a : b; }
inline float vabs(float x) { return __builtin_fabsf(x); }
inline double vabs(double x) { return __builtin_fabs(x); }

template <class P>
struct Vec {
  static constexpr bool ok = false;
};

#if defined(__AVX512F__) && defined(__AVX512BW__)
struct VecF {
  typedef __m512 V;
  static constexpr std::size_t lanes = 16;
  static V splat(float x) { return _mm512_set1_ps(x); }
  static V loadf(const float* x) { return _mm512_loadu_ps(x); }
  static void storef(float* x, V y) { _mm512_storeu_ps(x, y); }
};
inline __m512 fsqrt(__m512 x) { return _mm512_sqrt_ps(x); }
inline __m512 maxsel(__m512 a, __m512 b) { return _mm512_max_ps(a, b); }
typedef int MaskZ __attribute__((vector_size(64)));  // what comparing two __m512 gives
inline __m512 pick(MaskZ c, __m512 a, __m512 b) { return c ? a : b; }
inline __m512 vabs(__m512 x) {
  return _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}
template <>
struct Vec<f16> : VecF {
  static constexpr bool ok = true;
  static V load(const f16* x) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
  }
  static void store(f16* x, V y) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x),
                        _mm512_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};
#if defined(__AVX512BF16__)
// bfloat16 in the avx512bf16 build: VCVTNEPS2BF16 rounds to nearest even as store() above,
// in one instruction, but it treats float32 subnormals as zero and keeps a NaN's payload;
// a vector holding either (VFPCLASSPS: QNaN, SNaN, denormal) is rounded by store()'s integer
// steps instead.  (Inline assembly: the intrinsic's return type, __m256bh, differs between
// compilers.)
template <>
struct Vec<bf16> : VecF {
  static constexpr bool ok = true;
  static V load(const bf16* x) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static void store(bf16* x, V y) {
    __m256i r;
    if (__builtin_expect(_mm512_fpclass_ps_mask(y, 0x01 | 0x20 | 0x80) != 0, 0)) {
      const __m512i u = _mm512_castps_si512(y), hi = _mm512_srli_epi32(u, 16);
      const __m512i rounded =
          _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                                             _mm512_and_si512(hi, _mm512_set1_epi32(1))),
                            16);
      const __m512i nan = _mm512_or_si512(_mm512_and_si512(hi, _mm512_set1_epi32(0x8000)),
                                          _mm512_set1_epi32(0x7fc0));
      r = _mm512_cvtepi32_epi16(
          _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(y, y, _CMP_UNORD_Q), nan));
    } else {
      __asm__("vcvtneps2bf16 %1, %0" : "=v"(r) : "v"(y));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x), r);
  }
};
#endif
#elif defined(__AVX2__) && defined(__F16C__)
struct VecF {
  typedef __m256 V;
  static constexpr std::size_t lanes = 8;
  static V splat(float x) { return _mm256_set1_ps(x); }
  static V loadf(const float* x) { return _mm256_loadu_ps(x); }
  static void storef(float* x, V y) { _mm256_storeu_ps(x, y); }
};
inline __m256 fsqrt(__m256 x) { return _mm256_sqrt_ps(x); }
inline __m256 maxsel(__m256 a, __m256 b) { return _mm256_max_ps(a, b); }
typedef int MaskY __attribute__((vector_size(32)));  // what comparing two __m256 gives
inline __m256 pick(MaskY c, __m256 a, __m256 b) { return c ? a : b; }
inline __m256 vabs(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
template <>
struct Vec<f16> : VecF {
  static constexpr bool ok = true;
  static V load(const f16* x) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
  }
  static void store(f16* x, V y) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(x),
                     _mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};
// bfloat16 in the avx2 build: 16 lanes as two 8-float halves (F2), so that one NaN test and
// one pack serve both; store()'s integer steps, a vector pair holding a NaN (rare) taking the
// NaN select.  (8 lanes at a time measured slower than the blocks: 65 against 56 us per
// Adam step at 1e5 elements, a build not in the tree; 16 lanes: 48 us, with the command
// above and FASTOPT_ISA=avx2.)
struct F2 {
  __m256 lo, hi;
};
inline F2 operator+(F2 a, F2 b) { return {a.lo + b.lo, a.hi + b.hi}; }
inline F2 operator-(F2 a, F2 b) { return {a.lo - b.lo, a.hi - b.hi}; }
inline F2 operator*(F2 a, F2 b) { return {a.lo * b.lo, a.hi * b.hi}; }
inline F2 operator/(F2 a, F2 b) { return {a.lo / b.lo, a.hi / b.hi}; }
inline F2 operator-(F2 a) { return {-a.lo, -a.hi}; }
inline F2 fsqrt(F2 a) { return {_mm256_sqrt_ps(a.lo), _mm256_sqrt_ps(a.hi)}; }
inline F2 maxsel(F2 a, F2 b) { return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)}; }
struct M2 {
  MaskY lo, hi;
};
inline M2 operator<(F2 a, F2 b) { return {a.lo < b.lo, a.hi < b.hi}; }
inline M2 operator>(F2 a, F2 b) { return {a.lo > b.lo, a.hi > b.hi}; }
inline M2 operator==(F2 a, F2 b) { return {a.lo == b.lo, a.hi == b.hi}; }
inline M2 operator!=(F2 a, F2 b) { return {a.lo != b.lo, a.hi != b.hi}; }
inline M2 operator|(M2 a, M2 b) { return {a.lo | b.lo, a.hi | b.hi}; }
inline F2 pick(M2 c, F2 a, F2 b) { return {pick(c.lo, a.lo, b.lo), pick(c.hi, a.hi, b.hi)}; }
inline F2 vabs(F2 x) { return {vabs(x.lo), vabs(x.hi)}; }
template <>
struct Vec<bf16> {
  static constexpr bool ok = true;
  typedef F2 V;
  static constexpr std::size_t lanes = 16;
  static V splat(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static V loadf(const float* x) { return {_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8)}; }
  static void storef(float* x, V y) {
    _mm256_storeu_ps(x, y.lo);
    _mm256_storeu_ps(x + 8, y.hi);
  }
  static __m256 widen(const bf16* x) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static V load(const bf16* x) { return {widen(x), widen(x + 8)}; }
  static __m256i round(__m256 y, bool nan) {
    const __m256i u = _mm256_castps_si256(y), hi = _mm256_srli_epi32(u, 16);
    const __m256i r =
        _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)),
                                           _mm256_and_si256(hi, _mm256_set1_epi32(1))),
                          16);
    if (!nan) return r;
    const __m256i q =
        _mm256_or_si256(_mm256_and_si256(hi, _mm256_set1_epi32(0x8000)), _mm256_set1_epi32(0x7fc0));
    return _mm256_blendv_epi8(r, q, _mm256_castps_si256(_mm256_cmp_ps(y, y, _CMP_UNORD_Q)));
  }
  static void store(bf16* x, V y) {
    // Unordered compare of the two halves: true in a lane where either holds a NaN.
    const bool nan = _mm256_movemask_ps(_mm256_cmp_ps(y.lo, y.hi, _CMP_UNORD_Q)) != 0;
    // Every value is <= 0xffff: the unsigned-saturating pack is a plain narrowing; it
    // interleaves the halves' 128-bit lanes, which the permute puts back in order.
    const __m256i packed = _mm256_packus_epi32(round(y.lo, nan), round(y.hi, nan));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x), _mm256_permute4x64_epi64(packed, 0xd8));
  }
};
#endif

// ---------------------------------------------------------------- one body, two widths
// One<P> is the one-element counterpart of Vec<P> (the same member names over T =
// Storage<P>::math), so that a kernel's loop body is written once, as a generic lambda over
// W, and each() runs it over vectors of Vec<P>::lanes where the build converts P in vectors
// (half precision, above) and over single elements for the rest: the remainder, and the
// whole float32/float64 loop, which the compiler vectorises as before (`W::splat(x)` is x,
// `W::load(p + i)` is load(p[i])).  The same IEEE operations in the same order either way:
// the same bits.
template <class P>
struct One {
  typedef typename Storage<P>::math V;
  static constexpr std::size_t lanes = 1;
  static V splat(V x) { return x; }
  static V loadf(const V* x) { return *x; }
  static void storef(V* x, V y) { *x = y; }
  static V load(const P* x) { return kernels::load(*x); }
  static void store(P* x, V y) { kernels::store(*x, y); }
};

// A half parameter with a float32 master copy (master_weights=True): the kernels read the
// master as the parameter and write both, the master and its rounding (one pass; Q, the
// parameter's type in the kernels below, is P* or Master<P>).
template <class P>
struct Master {
  typename Storage<P>::math* m;
  P* h;
  Master operator+(std::size_t i) const { return {m + i, h + i}; }
};

// W with the loads and stores of a Master<P> parameter too.
template <class W>
struct WithMaster : W {
  using W::load;
  using W::store;
  template <class P>
  static typename W::V load(Master<P> x) {
    return W::loadf(x.m);
  }
  template <class P>
  static void store(Master<P> x, typename W::V y) {
    W::storef(x.m, y);
    W::store(x.h, y);
  }
};

template <class P, class F>
inline void each(std::size_t n, F body) {
  std::size_t i = 0;
  if constexpr (Vec<P>::ok)
    for (; i + Vec<P>::lanes <= n; i += Vec<P>::lanes) body(WithMaster<Vec<P>>(), i);
  // The lambda's captured pointers lose the kernels' restrict qualifiers (GCC then versions
  // the loop with a run-time overlap test); element i touches index i of each array only,
  // so no iteration depends on another, which ivdep says.
  FASTOPT_IVDEP
  for (; i < n; ++i) body(WithMaster<One<P>>(), i);
}

// ---------------------------------------------------------------- SGD
template <class T, class P, bool WD, bool MOM, bool NESTEROV, bool FIRST, class Q>
inline void sgd_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT buf, std::size_t n, T lr,
                     T momentum, T one_minus_damp, T wd, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = W::splat(sign) * W::load(g + i);
    if (WD) gi = gi + W::splat(wd) * W::load(p + i);
    if (MOM) {
      V b;
      if (FIRST)
        b = gi;  // the first step copies the gradient: no dampening
      else
        b = W::splat(momentum) * W::loadf(buf + i) + W::splat(one_minus_damp) * gi;
      W::storef(buf + i, b);
      gi = NESTEROV ? gi + W::splat(momentum) * b : b;
    }
    W::store(p + i, W::load(p + i) - W::splat(lr) * gi);
  });
}

template <class T, class P, class Q>
void sgd(Q p, const P* g, T* buf, std::size_t n, T lr, T momentum, T one_minus_damp, T wd,
         bool use_wd, bool nesterov, bool maximize, bool first) {
  // The caller passes no buffer when momentum == 0 (decided in double: a momentum that
  // rounds to 0 in float32 still uses its buffer, as the NumPy reference does).
  if (buf == nullptr) {
    if (use_wd)
      sgd_impl<T, P, true, false, false, false>(p, g, buf, n, lr, momentum, one_minus_damp, wd,
                                                maximize);
    else
      sgd_impl<T, P, false, false, false, false>(p, g, buf, n, lr, momentum, one_minus_damp, wd,
                                                 maximize);
    return;
  }
#define FASTOPT_SGD(W, N, F) \
  sgd_impl<T, P, W, true, N, F>(p, g, buf, n, lr, momentum, one_minus_damp, wd, maximize)
  if (use_wd) {
    if (nesterov) {
      if (first)
        FASTOPT_SGD(true, true, true);
      else
        FASTOPT_SGD(true, true, false);
    } else {
      if (first)
        FASTOPT_SGD(true, false, true);
      else
        FASTOPT_SGD(true, false, false);
    }
  } else {
    if (nesterov) {
      if (first)
        FASTOPT_SGD(false, true, true);
      else
        FASTOPT_SGD(false, true, false);
    } else {
      if (first)
        FASTOPT_SGD(false, false, true);
      else
        FASTOPT_SGD(false, false, false);
    }
  }
#undef FASTOPT_SGD
}

// ---------------------------------------------------------------- Adagrad
// clr = lr / (1 + (t - 1) * lr_decay) is computed by the caller in double.
template <class T, class P, bool WD, class Q>
inline void adagrad_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT sum, std::size_t n,
                         T clr, T wd, T eps, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = W::splat(sign) * W::load(g + i);
    if (WD) gi = gi + W::splat(wd) * W::load(p + i);
    const V s = W::loadf(sum + i) + gi * gi;
    W::storef(sum + i, s);
    W::store(p + i, W::load(p + i) - W::splat(clr) * gi / (fsqrt(s) + W::splat(eps)));
  });
}

template <class T, class P, class Q>
void adagrad(Q p, const P* g, T* sum, std::size_t n, T clr, T wd, bool use_wd, T eps,
             bool maximize) {
  if (use_wd)
    adagrad_impl<T, P, true>(p, g, sum, n, clr, wd, eps, maximize);
  else
    adagrad_impl<T, P, false>(p, g, sum, n, clr, wd, eps, maximize);
}

// ---------------------------------------------------------------- RMSprop
template <class T, class P, bool WD, bool CENTERED, bool MOM, class Q>
inline void rmsprop_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT sq,
                         T* FASTOPT_RESTRICT ga, T* FASTOPT_RESTRICT buf, std::size_t n, T lr,
                         T alpha, T one_minus_alpha, T eps, T wd, T momentum, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = W::splat(sign) * W::load(g + i);
    if (WD) gi = gi + W::splat(wd) * W::load(p + i);
    const V s = W::splat(alpha) * W::loadf(sq + i) + W::splat(one_minus_alpha) * gi * gi;
    W::storef(sq + i, s);
    V avg;
    if (CENTERED) {
      const V a0 = W::loadf(ga + i);
      const V a = a0 + W::splat(one_minus_alpha) * (gi - a0);
      W::storef(ga + i, a);
      avg = fsqrt(s - a * a) + W::splat(eps);
    } else {
      avg = fsqrt(s) + W::splat(eps);
    }
    if (MOM) {
      const V b = W::splat(momentum) * W::loadf(buf + i) + gi / avg;
      W::storef(buf + i, b);
      W::store(p + i, W::load(p + i) - W::splat(lr) * b);
    } else {
      W::store(p + i, W::load(p + i) - W::splat(lr) * gi / avg);
    }
  });
}

template <class T, class P, class Q>
void rmsprop(Q p, const P* g, T* sq, T* ga, T* buf, std::size_t n, T lr, T alpha, T one_minus_alpha,
             T eps, T wd, bool use_wd, T momentum, bool centered, bool maximize) {
  const bool mom = buf != nullptr;  // the caller passes a buffer iff momentum > 0 (in double)
  const bool cen = centered && ga != nullptr;
#define FASTOPT_RMS(W, C, M)                                                                       \
  rmsprop_impl<T, P, W, C, M>(p, g, sq, ga, buf, n, lr, alpha, one_minus_alpha, eps, wd, momentum, \
                              maximize)
  if (use_wd) {
    if (cen) {
      if (mom)
        FASTOPT_RMS(true, true, true);
      else
        FASTOPT_RMS(true, true, false);
    } else {
      if (mom)
        FASTOPT_RMS(true, false, true);
      else
        FASTOPT_RMS(true, false, false);
    }
  } else {
    if (cen) {
      if (mom)
        FASTOPT_RMS(false, true, true);
      else
        FASTOPT_RMS(false, true, false);
    } else {
      if (mom)
        FASTOPT_RMS(false, false, true);
      else
        FASTOPT_RMS(false, false, false);
    }
  }
#undef FASTOPT_RMS
}

// ---------------------------------------------------------------- Adam / AdamW
// The moments of Adam, NAdam and RAdam at element (or vector) i: weight decay (L2 into the
// gradient, or DECOUPLED: the parameter scaled by decay = 1 - lr * wd), then m and v
// updated in place; gi and pi as decayed, the new m and v returned.
template <class V>
struct Moments {
  V m, v;
};
template <class W, bool WD, bool DECOUPLED, class T, class V>
inline Moments<V> adam_moments(std::size_t i, V& gi, V& pi, T* m, T* v, T one_minus_beta1, T beta2,
                               T one_minus_beta2, T wd, T decay) {
  if (WD) {
    if (DECOUPLED)
      pi = pi * W::splat(decay);
    else
      gi = gi + W::splat(wd) * pi;
  }
  const V m0 = W::loadf(m + i);
  const V mi = m0 + W::splat(one_minus_beta1) * (gi - m0);
  const V vi = W::splat(beta2) * W::loadf(v + i) + W::splat(one_minus_beta2) * gi * gi;
  W::storef(m + i, mi);
  W::storef(v + i, vi);
  return {mi, vi};
}

// step_size = lr / (1 - beta1**t) and inv_bc2_sqrt = 1 / sqrt(1 - beta2**t) are computed by the
// caller in double from the integer step t.  decay = 1 - lr * wd (AdamW) likewise.
// MAXIMIZE: the gradient negated (-g), a template parameter here: no product with +1 when it
// does not maximize (5% of a bfloat16 step in the avx2 build).  On every ISA build today a
// NaN gradient's sign flips as in the reference (tests/test_half.py pins it), but the
// conventions above say why no source form guarantees that.
template <class T, class P, bool WD, bool DECOUPLED, bool AMSGRAD, bool MAXIMIZE, class Q>
inline void adam_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT m,
                      T* FASTOPT_RESTRICT v, T* FASTOPT_RESTRICT vmax, std::size_t n,
                      T one_minus_beta1, T beta2, T one_minus_beta2, T eps, T wd, T decay,
                      T step_size, T inv_bc2_sqrt) {
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = MAXIMIZE ? -W::load(g + i) : W::load(g + i);
    V pi = W::load(p + i);
    const Moments<V> mv = adam_moments<W, WD, DECOUPLED>(i, gi, pi, m, v, one_minus_beta1, beta2,
                                                         one_minus_beta2, wd, decay);
    const V mi = mv.m, vi = mv.v;
    V vv = vi;
    if (AMSGRAD) {
      vv = maxsel(W::loadf(vmax + i), vi);
      W::storef(vmax + i, vv);
    }
    const V denom = fsqrt(vv) * W::splat(inv_bc2_sqrt) + W::splat(eps);
    W::store(p + i, pi - W::splat(step_size) * mi / denom);
  });
}

template <class T, class P, class Q>
void adam(Q p, const P* g, T* m, T* v, T* vmax, std::size_t n, T one_minus_beta1, T beta2,
          T one_minus_beta2, T eps, T wd, bool use_wd, T decay, T step_size, T inv_bc2_sqrt,
          bool decoupled, bool amsgrad, bool maximize) {
  const bool ams = amsgrad && vmax != nullptr;
#define FASTOPT_ADAM(W, D, A)                                                                     \
  (maximize                                                                                       \
       ? adam_impl<T, P, W, D, A, true>(p, g, m, v, vmax, n, one_minus_beta1, beta2,              \
                                        one_minus_beta2, eps, wd, decay, step_size, inv_bc2_sqrt) \
       : adam_impl<T, P, W, D, A, false>(p, g, m, v, vmax, n, one_minus_beta1, beta2,             \
                                         one_minus_beta2, eps, wd, decay, step_size,              \
                                         inv_bc2_sqrt))
  if (use_wd) {
    if (decoupled) {
      if (ams)
        FASTOPT_ADAM(true, true, true);
      else
        FASTOPT_ADAM(true, true, false);
    } else {
      if (ams)
        FASTOPT_ADAM(true, false, true);
      else
        FASTOPT_ADAM(true, false, false);
    }
  } else {
    if (ams)
      FASTOPT_ADAM(false, false, true);
    else
      FASTOPT_ADAM(false, false, false);
  }
#undef FASTOPT_ADAM
}

// ---------------------------------------------------------------- Adamax
// step_size = lr / (1 - beta1**t) is computed by the caller in double.  The maximum
// propagates a NaN from either side, as torch.maximum and np.maximum.
template <class T, class P, bool WD, class Q>
inline void adamax_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT m,
                        T* FASTOPT_RESTRICT u, std::size_t n, T one_minus_beta1, T beta2, T eps,
                        T wd, T step_size, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = W::splat(sign) * W::load(g + i);
    if (WD) gi = gi + W::splat(wd) * W::load(p + i);
    const V m0 = W::loadf(m + i);
    const V mi = m0 + W::splat(one_minus_beta1) * (gi - m0);
    const V a = W::splat(beta2) * W::loadf(u + i);
    const V b = vabs(gi) + W::splat(eps);
    const V ui = pick((a != a) | (a > b), a, b);
    W::storef(m + i, mi);
    W::storef(u + i, ui);
    W::store(p + i, W::load(p + i) - W::splat(step_size) * mi / ui);
  });
}

template <class T, class P, class Q>
void adamax(Q p, const P* g, T* m, T* u, std::size_t n, T one_minus_beta1, T beta2, T eps, T wd,
            bool use_wd, T step_size, bool maximize) {
  if (use_wd)
    adamax_impl<T, P, true>(p, g, m, u, n, one_minus_beta1, beta2, eps, wd, step_size, maximize);
  else
    adamax_impl<T, P, false>(p, g, m, u, n, one_minus_beta1, beta2, eps, wd, step_size, maximize);
}

// ---------------------------------------------------------------- NAdam
// bias_correction2 = 1 - beta2**t, grad_coef = -lr (1 - mu_t) / (1 - prod mu) and
// avg_coef = -lr mu_{t+1} / (1 - mu_{t+1} prod mu) are computed by the caller in double (the
// running product as torch keeps it).  Two additions to p, in torch's order.
template <class T, class P, bool WD, bool DECOUPLED, class Q>
inline void nadam_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT m,
                       T* FASTOPT_RESTRICT v, std::size_t n, T one_minus_beta1, T beta2,
                       T one_minus_beta2, T eps, T wd, T decay, T bias_correction2, T grad_coef,
                       T avg_coef, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = W::splat(sign) * W::load(g + i);
    V pi = W::load(p + i);
    const Moments<V> mv = adam_moments<W, WD, DECOUPLED>(i, gi, pi, m, v, one_minus_beta1, beta2,
                                                         one_minus_beta2, wd, decay);
    const V mi = mv.m, vi = mv.v;
    const V denom = fsqrt(vi / W::splat(bias_correction2)) + W::splat(eps);
    pi = pi + W::splat(grad_coef) * gi / denom;
    W::store(p + i, pi + W::splat(avg_coef) * mi / denom);
  });
}

template <class T, class P, class Q>
void nadam(Q p, const P* g, T* m, T* v, std::size_t n, T one_minus_beta1, T beta2,
           T one_minus_beta2, T eps, T wd, bool use_wd, T decay, T bias_correction2, T grad_coef,
           T avg_coef, bool decoupled, bool maximize) {
#define FASTOPT_NADAM(W, D)                                                                      \
  nadam_impl<T, P, W, D>(p, g, m, v, n, one_minus_beta1, beta2, one_minus_beta2, eps, wd, decay, \
                         bias_correction2, grad_coef, avg_coef, maximize)
  if (use_wd) {
    if (decoupled)
      FASTOPT_NADAM(true, true);
    else
      FASTOPT_NADAM(true, false);
  } else {
    FASTOPT_NADAM(false, false);
  }
#undef FASTOPT_NADAM
}

// ---------------------------------------------------------------- RAdam
// step_size folds lr, the bias corrections and the rectification term r_t (computed by the
// caller in double); `rectify` (rho_t > 5) is decided there too.
template <class T, class P, bool WD, bool DECOUPLED, bool RECTIFY, class Q>
inline void radam_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT m,
                       T* FASTOPT_RESTRICT v, std::size_t n, T one_minus_beta1, T beta2,
                       T one_minus_beta2, T eps, T wd, T decay, T step_size, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = W::splat(sign) * W::load(g + i);
    V pi = W::load(p + i);
    const Moments<V> mv = adam_moments<W, WD, DECOUPLED>(i, gi, pi, m, v, one_minus_beta1, beta2,
                                                         one_minus_beta2, wd, decay);
    const V mi = mv.m, vi = mv.v;
    if (RECTIFY)
      W::store(p + i, pi - W::splat(step_size) * mi / (fsqrt(vi) + W::splat(eps)));
    else
      W::store(p + i, pi - W::splat(step_size) * mi);
  });
}

template <class T, class P, class Q>
void radam(Q p, const P* g, T* m, T* v, std::size_t n, T one_minus_beta1, T beta2,
           T one_minus_beta2, T eps, T wd, bool use_wd, T decay, T step_size, bool decoupled,
           bool rectify, bool maximize) {
#define FASTOPT_RADAM(W, D, R)                                                               \
  radam_impl<T, P, W, D, R>(p, g, m, v, n, one_minus_beta1, beta2, one_minus_beta2, eps, wd, \
                            decay, step_size, maximize)
  if (use_wd) {
    if (decoupled) {
      if (rectify)
        FASTOPT_RADAM(true, true, true);
      else
        FASTOPT_RADAM(true, true, false);
    } else {
      if (rectify)
        FASTOPT_RADAM(true, false, true);
      else
        FASTOPT_RADAM(true, false, false);
    }
  } else {
    if (rectify)
      FASTOPT_RADAM(false, false, true);
    else
      FASTOPT_RADAM(false, false, false);
  }
#undef FASTOPT_RADAM
}

// ---------------------------------------------------------------- Adadelta
template <class T, class P, bool WD, class Q>
inline void adadelta_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT v,
                          T* FASTOPT_RESTRICT u, std::size_t n, T lr, T rho, T one_minus_rho, T eps,
                          T wd, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = W::splat(sign) * W::load(g + i);
    if (WD) gi = gi + W::splat(wd) * W::load(p + i);
    const V vi = W::splat(rho) * W::loadf(v + i) + W::splat(one_minus_rho) * gi * gi;
    W::storef(v + i, vi);
    const V u0 = W::loadf(u + i), e = W::splat(eps);
    const V delta = fsqrt(u0 + e) / fsqrt(vi + e) * gi;
    W::storef(u + i, W::splat(rho) * u0 + W::splat(one_minus_rho) * delta * delta);
    W::store(p + i, W::load(p + i) - W::splat(lr) * delta);
  });
}

template <class T, class P, class Q>
void adadelta(Q p, const P* g, T* v, T* u, std::size_t n, T lr, T rho, T one_minus_rho, T eps, T wd,
              bool use_wd, bool maximize) {
  if (use_wd)
    adadelta_impl<T, P, true>(p, g, v, u, n, lr, rho, one_minus_rho, eps, wd, maximize);
  else
    adadelta_impl<T, P, false>(p, g, v, u, n, lr, rho, one_minus_rho, eps, wd, maximize);
}

// ---------------------------------------------------------------- Rprop
// torch.optim.Rprop in its order: the factor is sign(g * prev) (torch.sign: 0 for NaN)
// replaced by etaplus where > 0, then etaminus where < 0, then 1 where == 0; the gradient is
// zeroed where the factor equals etaminus.  FIRST: the step sizes start at lr (torch's
// state init), the stored ones are not read.  clamp propagates NaN, as torch.clamp.
template <class T>
inline T torch_sign(T x) {
  return T(x > T(0)) - T(x < T(0));
}

// torch's replacements applied to a sign s (1, -1 or 0), in T as the arrays hold them.
template <class T>
inline T rprop_factor(T s, T etaminus, T etaplus) {
  T f = s > T(0) ? etaplus : s;
  f = f < T(0) ? etaminus : f;
  return f == T(0) ? T(1) : f;
}

// The factor of each sign is computed once, before the loop, so that the loop selects
// among three values by comparing g * prev with 0: the same factors, but GCC no longer
// threads the correlated comparisons of torch_sign and the replacements into branches,
// which kept the FIRST loop from vectorising (generic and AVX2 builds).
template <class T, class P, bool FIRST>
inline void rprop_impl(P* FASTOPT_RESTRICT p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT prev,
                       T* FASTOPT_RESTRICT ss, std::size_t n, T lr, T etaminus, T etaplus, T smin,
                       T smax, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  const T f_pos = rprop_factor(T(1), etaminus, etaplus);
  const T f_neg = rprop_factor(T(-1), etaminus, etaplus);
  const T f_zero = rprop_factor(T(0), etaminus, etaplus);
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * load(g[i]);
    const T x = gi * prev[i];
    T f = x > T(0) ? f_pos : f_zero;  // NaN: torch.sign gives 0
    f = x < T(0) ? f_neg : f;
    T s = (FIRST ? lr : ss[i]) * f;
    s = s < smin ? smin : s;
    s = s > smax ? smax : s;
    gi = f == etaminus ? T(0) : gi;
    ss[i] = s;
    prev[i] = gi;
    store(p[i], load(p[i]) - torch_sign(gi) * s);
  }
}

template <class T, class P>
void rprop(P* p, const P* g, T* prev, T* ss, std::size_t n, T lr, T etaminus, T etaplus, T smin,
           T smax, bool first, bool maximize) {
  if (first)
    rprop_impl<T, P, true>(p, g, prev, ss, n, lr, etaminus, etaplus, smin, smax, maximize);
  else
    rprop_impl<T, P, false>(p, g, prev, ss, n, lr, etaminus, etaplus, smin, smax, maximize);
}

// ---------------------------------------------------------------- ASGD
// eta, mu (torch's float32 state), decay = 1 - lambd * eta and `average` (mu != 1) are
// computed by the caller in double.
template <class T, class P, bool WD, bool AVERAGE, class Q>
inline void asgd_impl(Q p, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT ax, std::size_t n,
                      T eta, T decay, T mu, T wd, bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V gi = W::splat(sign) * W::load(g + i);
    if (WD) gi = gi + W::splat(wd) * W::load(p + i);
    V pi = W::load(p + i) * W::splat(decay);
    pi = pi - W::splat(eta) * gi;
    W::store(p + i, pi);
    if (AVERAGE) {
      const V a = W::loadf(ax + i);
      W::storef(ax + i, a + (pi - a) * W::splat(mu));
    } else {
      W::storef(ax + i, pi);
    }
  });
}

template <class T, class P, class Q>
void asgd(Q p, const P* g, T* ax, std::size_t n, T eta, T decay, T mu, T wd, bool use_wd,
          bool average, bool maximize) {
#define FASTOPT_ASGD(W, A) asgd_impl<T, P, W, A>(p, g, ax, n, eta, decay, mu, wd, maximize)
  if (use_wd) {
    if (average)
      FASTOPT_ASGD(true, true);
    else
      FASTOPT_ASGD(true, false);
  } else {
    if (average)
      FASTOPT_ASGD(false, true);
    else
      FASTOPT_ASGD(false, false);
  }
#undef FASTOPT_ASGD
}

// ---------------------------------------------------------------- Adafactor, Muon
// The element-wise parts of the matrix optimizers (fastopt._contract.MATRIX_KERNELS); the
// reductions and the Newton-Schulz products run in NumPy, the same for every backend.
// torch.lerp with a scalar weight: a + w (b - a) when |w| < 0.5, else b - (b - a)(1 - w).
// (T: float, double or a vector of Vec<P>.)
template <class T>
inline T lerp(T a, T b, T w, T one_minus_w, bool small) {
  return small ? a + w * (b - a) : b - (b - a) * one_minus_w;
}

template <class T>
inline bool lerp_small(T w) {
  return (w < T(0) ? -w : w) < T(0.5);
}

// u = g / sqrt(max(v, eps)) (g negated when maximize); v lerped towards g*g first when LERP.
template <class T, class P, bool LERP, class Q>
inline void adafactor_update_impl(Q u, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT v,
                                  std::size_t n, T w, T one_minus_w, bool small, T eps,
                                  bool maximize) {
  const T sign = maximize ? T(-1) : T(1);
  each<P>(n, [&](auto tag, std::size_t i) {
    typedef decltype(tag) W;
    typedef typename W::V V;
    const V gi = W::splat(sign) * W::load(g + i);
    V vi = W::loadf(v + i);
    if (LERP) {
      vi = lerp(vi, gi * gi, W::splat(w), W::splat(one_minus_w), small);
      W::storef(v + i, vi);
    }
    const V e = W::splat(eps);
    const V c = pick(vi < e, e, vi);  // NaN stays NaN, as torch's clamp
    W::store(u + i, W::splat(T(1)) / fsqrt(c) * gi);
  });
}

template <class T, class P, class Q>
void adafactor_update(Q u, const P* g, T* v, std::size_t n, T w, T eps, bool lerp_v,
                      bool maximize) {
  if (lerp_v)
    adafactor_update_impl<T, P, true>(u, g, v, n, w, T(1) - w, lerp_small(w), eps, maximize);
  else
    adafactor_update_impl<T, P, false>(u, g, v, n, w, T(1) - w, lerp_small(w), eps, maximize);
}

// b = lerp(b, g, w); u = lerp(g, b, momentum) when nesterov, else u = b.
template <class T, class P, class Q>
void muon_update(Q u, const P* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT b, std::size_t n, T w,
                 T momentum, bool nesterov) {
  const T omw = T(1) - w, omm = T(1) - momentum;
  const bool sw = lerp_small(w), sm = lerp_small(momentum);
  each<P>(n, [&](auto tag, std::size_t i) {
    typedef decltype(tag) W;
    typedef typename W::V V;
    const V gi = W::load(g + i);
    const V bi = lerp(W::loadf(b + i), gi, W::splat(w), W::splat(omw), sw);
    W::storef(b + i, bi);
    W::store(u + i, nesterov ? lerp(gi, bi, W::splat(momentum), W::splat(omm), sm) : bi);
  });
}

// p = p * decay (when use_wd), then p = p - step_size * u.
template <class T, class P, class Q>
void decay_add(Q p, const P* FASTOPT_RESTRICT u, std::size_t n, T decay, bool use_wd, T step_size) {
  each<P>(n, [&](auto w, std::size_t i) {
    typedef decltype(w) W;
    typedef typename W::V V;
    V pi = W::load(p + i);
    if (use_wd) pi = pi * W::splat(decay);
    W::store(p + i, pi - W::splat(step_size) * W::load(u + i));
  });
}

// ---------------------------------------------------------------- finiteness check
// True if every element is finite.  Compares the magnitude bits with the exponent mask
// (inf and NaN have an all-ones exponent); a max-reduction over unsigned integers
// vectorises without any floating-point reassociation.
template <class T>
bool all_finite(const T* FASTOPT_RESTRICT x, std::size_t n) {
  typedef typename Storage<T>::bits U;
  const U abs_mask = Storage<T>::abs_mask;
  U worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    U b;
    __builtin_memcpy(&b, x + i, sizeof(T));
    b &= abs_mask;
    worst = b > worst ? b : worst;
  }
  return worst < Storage<T>::inf_bits;
}

// ---------------------------------------------------------------- bandwidth probe
// Moves the same bytes as an optimizer step (reads NR arrays, writes the first NW of them
// back) with no arithmetic beyond one add per array: the memory roofline of a step.
template <class T, int NR, int NW>
inline void probe_impl(T* const* arrays, std::size_t n) {
  T* a[NR];
  for (int k = 0; k < NR; ++k) a[k] = arrays[k];
  FASTOPT_IVDEP
  for (std::size_t i = 0; i < n; ++i) {
    T acc = a[0][i];
    for (int k = 1; k < NR; ++k) acc += a[k][i];
    for (int k = 0; k < NW; ++k) a[k][i] = acc;
  }
}

template <class T>
void probe(T* const* arrays, int nread, int nwrite, std::size_t n) {
  switch (nread * 8 + nwrite) {
    case 1 * 8 + 0:
      probe_impl<T, 1, 0>(arrays, n);
      return;
    case 1 * 8 + 1:
      probe_impl<T, 1, 1>(arrays, n);
      return;
    case 2 * 8 + 1:
      probe_impl<T, 2, 1>(arrays, n);
      return;
    case 3 * 8 + 2:
      probe_impl<T, 3, 2>(arrays, n);
      return;
    case 4 * 8 + 3:
      probe_impl<T, 4, 3>(arrays, n);
      return;
    case 5 * 8 + 4:
      probe_impl<T, 5, 4>(arrays, n);
      return;
    default:
      for (std::size_t i = 0; i < n; ++i) {
        T acc = T(0);
        for (int k = 0; k < nread; ++k) acc += arrays[k][i];
        for (int k = 0; k < nwrite; ++k) arrays[k][i] = acc;
      }
  }
}

}  // namespace kernels
}  // namespace FASTOPT_ISA_NS
}  // namespace fastopt
