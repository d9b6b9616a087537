// Python bindings of the fastopt kernels (module fastopt._native).
//
// Every entry point is multi-tensor: it takes lists of arrays (one row per parameter:
// the parameter, its gradient and its state arrays), checks every array of every row
// before touching any, then releases the GIL and runs the kernels.  A check that fails
// raises TypeError/ValueError naming the array, the value and the fix, and nothing has
// been written.  Non-contiguous gradients are read through a contiguous copy (they are
// inputs only); parameters and state must be C-contiguous and writeable, because
// updating a copy would silently lose the update.
//
// Execution: the rows of one call are seen as one long sequence of elements.  Below a
// size threshold (measured: see kParallelMinBytes) one thread walks it; above, it is cut
// into cache-line-aligned chunks that the caller and the pool threads (threads.cpp) take
// from an atomic counter, so 1000 small arrays are divided as well as one large one.  Each
// chunk runs the kernels of the ISA chosen once at import (AVX-512, AVX2+FMA or generic;
// FASTOPT_ISA=generic|avx2|avx512|avx512bf16 or set_isa() override it).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fastopt/dispatch.hpp"
#include "threads.hpp"

#if defined(FASTOPT_HAVE_X86_ISAS)
#include <cpuid.h>
#endif

namespace py = pybind11;
using fastopt::DType;
using fastopt::Job;
using fastopt::kMaxSlots;
using fastopt::Op;
using fastopt::Row;

namespace {

struct Slot {
  const char* role;  // "params", "grads", "exp_avgs", ...
  py::object seq;    // a sequence of arrays, or None if the slot is unused
  bool writable;
  // The float32 master copies of half params (step's `masters`, the last slot): an entry may
  // be None (that row has none), and the array goes to Row::master, not to Row::ptr.
  bool master = false;
};

std::string key_of(const py::object& names, std::size_t i) {
  if (!names.is_none()) return py::repr(names[py::int_(i)]).cast<std::string>();
  return std::to_string(i);
}

// No iostreams or locale anywhere in the extension (a toolchain that linked libstdc++
// statically and exported its symbols crashed in std::ostream here): std::to_string only.
std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    s += std::to_string(static_cast<long long>(a.shape(d)));
    if (a.ndim() == 1 || d + 1 < a.ndim()) s += (a.ndim() == 1 ? "," : ", ");
  }
  s += ")";
  return s;
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// The dtypes float32 and float64 (NumPy's own descriptors, set at import and never released),
// and an array's descriptor (borrowed): most arrays carry NumPy's own descriptor, so a pointer
// compare decides before the full (slower) dtype comparison.
PyObject* g_f32_descr = nullptr;
PyObject* g_f64_descr = nullptr;
PyObject* descr_of(const py::array& a) {
  return reinterpret_cast<PyObject*>(py::detail::array_proxy(a.ptr())->descr);
}

// The storage of an array the kernels update: float32, float64, float16 or bfloat16
// (ml_dtypes.bfloat16, recognised by its name: its kind is 'V', and fastopt does not import
// ml_dtypes).  False for any other dtype.
bool storage_of(const py::array& a, DType& out) {
  if (descr_of(a) == g_f32_descr || descr_of(a) == g_f64_descr) {  // the common case, quickly
    out = descr_of(a) == g_f32_descr ? DType::f32 : DType::f64;
    return true;
  }
  const py::dtype dt = a.dtype();
  if (dt.is(py::dtype::of<float>()) || dt.equal(py::dtype::of<float>())) {
    out = DType::f32;
  } else if (dt.is(py::dtype::of<double>()) || dt.equal(py::dtype::of<double>())) {
    out = DType::f64;
  } else if (dt.itemsize() != 2) {
    return false;
  } else if (dt.kind() == 'f') {
    out = DType::f16;
  } else if (dt.kind() == 'V' && py::str(dt.attr("name")).cast<std::string>() == "bfloat16") {
    out = DType::bf16;
  } else {
    return false;
  }
  return true;
}

// A half-precision parameter keeps its state in float32.
bool is_half(DType d) { return d == DType::bf16 || d == DType::f16; }

// numpy.memmap, the one ndarray subclass accepted (set at import; a strong reference never
// released, so no destructor runs after the interpreter has gone).
PyObject* g_memmap_type = nullptr;

// A plain ndarray or a memmap: subclasses (np.matrix, masked arrays, ...) redefine arithmetic or
// carry a mask that a raw-memory kernel would ignore, so every backend refuses them.
bool plain_array(const py::handle& obj) {
  if (Py_TYPE(obj.ptr()) == py::detail::npy_api::get().PyArray_Type_) return true;
  if (g_memmap_type == nullptr) return false;
  const int r = PyObject_IsInstance(obj.ptr(), g_memmap_type);
  if (r < 0) throw py::error_already_set();
  return r == 1;
}

// Lowest and one past the highest byte that `a` addresses (negative strides included), as
// np.byte_bounds; only called for arrays with at least one element.
void byte_bounds(const py::array& a, std::uintptr_t& lo, std::uintptr_t& hi) {
  lo = reinterpret_cast<std::uintptr_t>(a.data());
  hi = lo + static_cast<std::uintptr_t>(a.itemsize());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const std::intptr_t ext = static_cast<std::intptr_t>(a.shape(d) - 1) * a.strides(d);
    if (ext < 0)
      lo -= static_cast<std::uintptr_t>(-ext);
    else
      hi += static_cast<std::uintptr_t>(ext);
  }
}

struct Interval {
  std::uintptr_t lo, hi;
  bool writable;
  std::uint32_t slot;
  std::size_t row;  // the label "role[key]" is only built for an error message
};

// Sorts the slot-major intervals by address (ties in row-major order, as the Python backends'
// stable sort of the row-major list) and drops the unused entries.  Each slot's run is usually
// in address order already (its arrays were allocated in turn): it is sorted only if it is
// not, then merged into the runs before it, O(slots * rows) instead of O(n log n).
void sort_by_address(std::vector<Interval>& v, std::size_t nslots, std::size_t nrows) {
  const auto before = [](const Interval& x, const Interval& y) {
    if (x.lo != y.lo) return x.lo < y.lo;
    return x.row != y.row ? x.row < y.row : x.slot < y.slot;
  };
  const auto unused = [](const Interval& x) { return x.hi == 0; };
  if (v.size() <= 64) {
    // A few arrays (one parameter's, say): insertion sort in place, no allocation
    // (inplace_merge takes a temporary buffer per slot: about 1100 instructions per call
    // for one Adam parameter under callgrind, against 200 for this).
    v.erase(std::remove_if(v.begin(), v.end(), unused), v.end());
    for (std::size_t i = 1; i < v.size(); ++i) {
      const Interval x = v[i];
      std::size_t j = i;
      for (; j > 0 && before(x, v[j - 1]); --j) v[j] = v[j - 1];
      v[j] = x;
    }
    return;
  }
  auto end = v.begin();
  for (std::size_t s = 0; s < nslots; ++s) {
    const auto first = v.begin() + static_cast<std::ptrdiff_t>(s * nrows);
    const auto kept = std::remove_if(first, first + static_cast<std::ptrdiff_t>(nrows), unused);
    const auto run = end;
    end = std::move(first, kept, run);
    if (!std::is_sorted(run, end, before)) std::sort(run, end, before);
    std::inplace_merge(v.begin(), run, end, before);
  }
  v.erase(end, v.end());
}

// Check every slot of every row and collect raw pointers.  `keep` holds a strong reference to
// every array the rows point into (a tuple snapshot of each list, and the contiguous copies of
// non-contiguous gradients) until the kernels have run: another thread may replace the items
// of the caller's lists while the GIL is released, and must not free an array under a kernel.
std::vector<Row> collect(std::vector<Slot>& slots, const py::object& names,
                         std::vector<py::object>& keep) {
  const std::size_t nslots = slots.size();
  // Null handles until filled: a default-constructed py::tuple is a new empty tuple.
  std::vector<py::tuple> seqs(nslots, py::reinterpret_steal<py::tuple>(py::handle()));
  keep.reserve(keep.size() + nslots + 1);
  std::size_t nrows = 0;
  for (std::size_t s = 0; s < nslots; ++s) {
    if (slots[s].seq.is_none()) continue;
    if (!py::isinstance<py::sequence>(slots[s].seq))
      throw py::type_error(std::string(slots[s].role) + " must be a list of numpy arrays, got " +
                           py::str(py::type::of(slots[s].seq)).cast<std::string>());
    seqs[s] = py::reinterpret_steal<py::tuple>(PySequence_Tuple(slots[s].seq.ptr()));
    if (!seqs[s]) throw py::error_already_set();
    keep.push_back(seqs[s]);
    const std::size_t len = seqs[s].size();
    if (s == 0)
      nrows = len;
    else if (len != nrows)
      throw py::value_error(std::string(slots[s].role) + " has " + std::to_string(len) +
                            " arrays but params has " + std::to_string(nrows) +
                            "; pass exactly one per parameter, in the same order");
  }
  std::vector<Row> rows(nrows);
  // Slot-major, [s * nrows + i]; hi == 0 marks no interval (an empty array, an unused slot).
  std::vector<Interval> intervals(nrows * nslots);
  for (std::size_t i = 0; i < nrows; ++i) {
    Row& row = rows[i];
    // A null handle until slot 0 sets it: a default-constructed py::array is a new array
    // (a NumPy allocation per row and call).
    auto p0 = py::reinterpret_steal<py::array>(py::handle());
    for (void*& q : row.ptr) q = nullptr;
    row.master = nullptr;
    for (std::size_t s = 0; s < nslots; ++s) {
      if (slots[s].seq.is_none()) continue;
      py::object obj = seqs[s][i];
      auto label_of = [&] { return std::string(slots[s].role) + "[" + key_of(names, i) + "]"; };
      if (slots[s].master && obj.is_none()) continue;  // no master copy for this row
      if (obj.is_none())
        throw py::type_error(label_of() +
                             " is None; fastopt needs a gradient for every "
                             "parameter at every step (put frozen parameters in no optimizer)");
      if (!py::isinstance<py::array>(obj))
        throw py::type_error(label_of() + " must be a numpy array, got " +
                             py::str(py::type::of(obj)).cast<std::string>() +
                             "; convert it with np.asarray(...)");
      if (!plain_array(obj))
        throw py::type_error(label_of() + " is a " +
                             py::str(py::type::of(obj)).cast<std::string>() +
                             ", an ndarray subclass; fastopt updates plain numpy arrays (np.memmap "
                             "is fine) and would not honour the subclass: pass np.asarray(x) "
                             "(a plain array of the same memory) and keep that array");
      auto a = py::reinterpret_borrow<py::array>(obj);  // checked just above
      if (s == 0) {
        if (!storage_of(a, row.dtype))
          throw py::type_error(label_of() + " has dtype " + dtype_str(a) +
                               "; fastopt updates float32, float64, float16 or bfloat16 arrays "
                               "in place: create the parameter with dtype=np.float32 or "
                               "np.float64");
        row.n = static_cast<std::size_t>(a.size());
        p0 = a;
      } else if (slots[s].master) {
        // The float32 master copy of a half parameter.
        if (!is_half(row.dtype))
          throw py::type_error(label_of() + " is given but its parameter has dtype " +
                               dtype_str(p0) +
                               "; only a float16 or bfloat16 parameter has a float32 master "
                               "copy: pass None for this one");
        if (descr_of(a) != g_f32_descr && !a.dtype().equal(py::dtype::of<float>()))
          throw py::type_error(label_of() + " has dtype " + dtype_str(a) +
                               " but the master copy of a " + dtype_str(p0) +
                               " parameter is float32; pass a float32 array (for example "
                               "p.astype(np.float32))");
      } else {
        // The gradient has its parameter's dtype; the state has it too, except that a
        // half-precision parameter keeps float32 state.
        const bool f32_state = s >= 2 && is_half(row.dtype);
        const bool ok = f32_state
                            ? descr_of(a) == g_f32_descr || a.dtype().equal(py::dtype::of<float>())
                            : descr_of(a) == descr_of(p0) || a.dtype().equal(p0.dtype());
        if (!ok && f32_state)
          throw py::type_error(label_of() + " has dtype " + dtype_str(a) + " but the state of a " +
                               dtype_str(p0) +
                               " parameter is float32; pass a float32 array (for example "
                               "np.zeros(p.shape, np.float32))");
        if (!ok)
          throw py::type_error(label_of() + " has dtype " + dtype_str(a) +
                               " but its parameter has " + dtype_str(p0) +
                               "; pass an array of dtype " + dtype_str(p0) + " (for example " +
                               (is_half(row.dtype) ? std::string("g.astype(p.dtype)")
                                                   : "g.astype(np." + dtype_str(p0) + ")") +
                               ")");
      }
      if (s != 0) {
        bool same_shape = a.ndim() == p0.ndim();
        for (py::ssize_t d = 0; same_shape && d < a.ndim(); ++d)
          same_shape = a.shape(d) == p0.shape(d);
        if (!same_shape)
          throw py::value_error(label_of() + " has shape " + shape_str(a) +
                                " but its parameter has " + shape_str(p0) +
                                "; pass an array of the parameter's shape");
      }
      if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw py::value_error(
            label_of() +
            " is not aligned: its data does not start on a multiple "
            "of its " +
            std::to_string(a.itemsize()) +
            "-byte element size; "
            "fastopt reads whole elements: pass an aligned copy, x.copy() (np."
            "ascontiguousarray(x) keeps a misaligned array as it is), and keep it");
      const bool contiguous = (a.flags() & py::array::c_style) != 0;
      // The memory the caller's array addresses, before any contiguous copy: a strided view of
      // a parameter or state array is as much an alias as the array itself.
      std::uintptr_t lo = 0, hi = 0;
      if (row.n > 0) byte_bounds(a, lo, hi);
      if (slots[s].writable) {
        if (!contiguous)
          throw py::value_error(label_of() +
                                " is not C-contiguous; fastopt updates arrays in place "
                                "and will not update a copy: use np.ascontiguousarray(...) "
                                "once when you create it and keep that array");
        if (!a.writeable())
          throw py::value_error(label_of() +
                                " is read-only; fastopt updates it in place: pass a "
                                "writeable array (a.setflags(write=True) or a.copy())");
      } else if (!contiguous) {
        py::object c = py::module_::import("numpy").attr("ascontiguousarray")(a);
        keep.push_back(c);
        a = c.cast<py::array>();
      }
      (slots[s].master ? row.master : row.ptr[s]) = const_cast<void*>(a.data());
      if (row.n > 0)
        intervals[s * nrows + i] = {lo, hi, slots[s].writable, static_cast<std::uint32_t>(s), i};
    }
  }
  // No array written by this call may share memory with any other array of the call.
  sort_by_address(intervals, nslots, nrows);
  std::uintptr_t end_all = 0, end_w = 0;
  const Interval* last_all = nullptr;
  const Interval* last_w = nullptr;
  for (const Interval& iv : intervals) {
    const Interval* clash = nullptr;
    if (iv.writable && last_all && iv.lo < end_all)
      clash = last_all;
    else if (!iv.writable && last_w && iv.lo < end_w)
      clash = last_w;
    if (clash)
      throw py::value_error(std::string(slots[iv.slot].role) + "[" + key_of(names, iv.row) + "]" +
                            " shares memory with " + std::string(slots[clash->slot].role) + "[" +
                            key_of(names, clash->row) + "]" +
                            "; every parameter, gradient and state array must be a separate "
                            "array (pass grad.copy() if the gradient is a view of a parameter)");
    if (iv.hi > end_all) {
      end_all = iv.hi;
      last_all = &iv;
    }
    if (iv.writable && iv.hi > end_w) {
      end_w = iv.hi;
      last_w = &iv;
    }
  }
  return rows;
}

// ------------------------------------------------------------------ ISA dispatch
struct Isa {
  const char* name;
  fastopt::RunFn fn;
};

#if defined(FASTOPT_HAVE_X86_ISAS)
// F16C (CPUID leaf 1, ECX bit 29) and AVX512_BF16 (leaf 7, sub-leaf 1, EAX bit 5), read
// directly: Clang 14 knows neither name in __builtin_cpu_supports (a compile error).  The
// OS's saving of the vector registers is what __builtin_cpu_supports("avx2") and ("avx512f")
// check, below.
bool cpu_has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c >> 29) & 1u;
}
bool cpu_has_avx512bf16() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return (a >> 5) & 1u;
}
#endif

bool cpu_supports(const std::string& name) {
  if (name == "generic") return true;
#if defined(FASTOPT_HAVE_X86_ISAS)
  __builtin_cpu_init();
  if (name == "avx2")  // compiled with -mavx2 -mfma -mf16c
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  if (name == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           cpu_supports("avx2");
  if (name == "avx512bf16")  // the avx512 build plus AVX512_BF16's VCVTNEPS2BF16
    return cpu_has_avx512bf16() && cpu_supports("avx512");
#endif
  return false;
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> v{{"generic", &fastopt::run_generic}};
#if defined(FASTOPT_HAVE_X86_ISAS)
  v.push_back({"avx2", &fastopt::run_avx2});
  v.push_back({"avx512", &fastopt::run_avx512});
#if defined(FASTOPT_HAVE_AVX512BF16)  // compiled only where the compiler knows the instruction
  v.push_back({"avx512bf16", &fastopt::run_avx512bf16});
#endif
#endif
  return v;
}

std::vector<std::string> supported_isas() {  // fastest last
  std::vector<std::string> out;
  for (const Isa& i : compiled_isas())
    if (cpu_supports(i.name)) out.push_back(i.name);
  return out;
}

std::atomic<fastopt::RunFn> g_run{&fastopt::run_generic};
std::string g_isa = "generic";

void set_isa(const std::string& name) {
  const auto sup = supported_isas();
  std::string want = name;
  if (want == "auto" || want == "best") want = sup.back();
  for (const Isa& i : compiled_isas()) {
    if (want == i.name) {
      if (!cpu_supports(want)) {
        std::string s;
        for (const auto& x : sup) s += (s.empty() ? "" : ", ") + x;
        throw py::value_error("ISA " + want + " is not supported by this CPU; supported: " + s);
      }
      g_run.store(i.fn);
      g_isa = want;
      return;
    }
  }
  std::string known;
  for (const Isa& i : compiled_isas()) known += "'" + std::string(i.name) + "', ";
  throw py::value_error("unknown ISA " + py::repr(py::str(name)).cast<std::string>() +
                        "; use one of " + known + "or 'auto'");
}

// ------------------------------------------------------------------ parallel execution
// Below this many bytes moved per call, one thread is faster than waking the pool.
// Measured on a 2-core EPYC (AVX-512): see benchmarks/threshold.py.
std::size_t g_parallel_min_bytes = 256 * 1024;
// Chunks are about this many bytes moved (several per thread).
constexpr std::size_t kChunkBytes = 512 * 1024;

// The chunks of one worker: a contiguous run [begin, end) of the call's chunks, taken through
// `cursor` by the worker first and then by any worker that ran out of its own (so a worker that
// wakes late, or shares its core with another process, simply takes fewer).  On an idle machine
// each worker updates the same elements every step, so a call whose data fit in the cores'
// caches finds its part of it still in its own core's cache.
struct alignas(64) Queue {
  std::atomic<std::size_t> cursor{0};  // chunks taken in this phase
  std::atomic<std::size_t> update{0};  // with the check: update chunks taken
  std::size_t begin = 0, end = 0;
};

struct Exec {
  const Job* job;
  const Row* rows;
  std::size_t nrows;
  std::vector<std::size_t> prefix;  // prefix[r] = elements before row r
  std::vector<std::size_t> bounds;  // chunk c = [bounds[c], bounds[c+1]) of the sequence
  std::unique_ptr<Queue[]> queues;  // one per worker
  int nqueues = 1;
  fastopt::RunFn fn;
  // The fused finiteness check (check_rows set): rows of Op::check_finite over the same
  // elements (slot 0: the gradient, slot 1: the row's int flag).  Every chunk is checked
  // first; a worker takes update chunks only once every check chunk has *finished* (not
  // just been taken) and none found a non-finite value, so a bad value in the last chunk
  // stops the writes to the first.  One pool job: no second wake-up, no second join.  Each
  // worker then updates its chunks last to first: the ones it checked last are still in its
  // cache, and the first ones, updated last, are where its next step's check begins.
  const Row* check_rows = nullptr;
  std::atomic<std::size_t> checked{0};  // check chunks finished
  std::atomic<bool> bad{false};         // a check chunk found inf or NaN

  // Runs `j` over the elements [b0, b1) of the sequence of `rs` (rows parallel to `rows`).
  // Returns whether a check (Op::check_finite) flagged one of those rows.
  bool run_range(const Job& j, const Row* rs, std::size_t b0, std::size_t b1) const {
    std::size_t r = static_cast<std::size_t>(std::upper_bound(prefix.begin(), prefix.end(), b0) -
                                             prefix.begin() - 1);
    bool flagged = false;
    for (; r < nrows && prefix[r] < b1; ++r) {
      const std::size_t lo = b0 > prefix[r] ? b0 - prefix[r] : 0;
      const std::size_t hi = std::min(rs[r].n, b1 - prefix[r]);
      if (hi <= lo) continue;
      fn(j, rs[r], lo, hi);
      if (j.op == Op::check_finite)
        flagged = flagged || __atomic_load_n(static_cast<int*>(rs[r].ptr[1]), __ATOMIC_RELAXED);
    }
    return flagged;
  }

  // Takes chunks through `cursor` of the worker's own queue, then of the others in turn, and
  // calls f(chunk) for each; `reverse`: each queue's chunks last to first.
  template <class F>
  void drain(int worker, std::atomic<std::size_t> Queue::* cursor, bool reverse, F f) {
    for (int i = 0; i < nqueues; ++i) {
      Queue& q = queues[static_cast<std::size_t>((worker + i) % nqueues)];
      const std::size_t len = q.end - q.begin;
      for (;;) {
        const std::size_t k = (q.*cursor).fetch_add(1, std::memory_order_relaxed);
        if (k >= len) break;
        f(reverse ? q.end - 1 - k : q.begin + k);
      }
    }
  }

  static void task(void* ctx, int worker) {
    Exec* e = static_cast<Exec*>(ctx);
    const std::size_t nchunks = e->bounds.size() - 1;
    if (e->check_rows) {
      Job c;
      c.op = Op::check_finite;
      e->drain(worker, &Queue::cursor, false, [e, &c](std::size_t k) {
        if (e->run_range(c, e->check_rows, e->bounds[k], e->bounds[k + 1]))
          e->bad.store(true, std::memory_order_relaxed);
        e->checked.fetch_add(1, std::memory_order_release);  // publishes `bad` too
      });
      // Every chunk is taken; wait until every one is checked (the workers checking the
      // last ones are running: the wait is at most one chunk's check).
      int spins = 0;
      while (e->checked.load(std::memory_order_acquire) != nchunks) fastopt::threads::relax(spins);
      if (e->bad.load(std::memory_order_relaxed)) return;
    }
    e->drain(
        worker, e->check_rows ? &Queue::update : &Queue::cursor, e->check_rows != nullptr,
        [e](std::size_t k) { e->run_range(*e->job, e->rows, e->bounds[k], e->bounds[k + 1]); });
  }
};

std::size_t elem_size(const Row& r) {
  return r.dtype == DType::f64 ? 8 : r.dtype == DType::f32 ? 4 : 2;
}

// Boundary at global element g, moved down so that the parameter's element starts a cache line.
std::size_t align_boundary(const Exec& e, std::size_t g) {
  std::size_t r = static_cast<std::size_t>(std::upper_bound(e.prefix.begin(), e.prefix.end(), g) -
                                           e.prefix.begin() - 1);
  if (r >= e.nrows) return g;
  const std::size_t o = g - e.prefix[r];
  const std::size_t es = elem_size(e.rows[r]);
  const auto base = reinterpret_cast<std::uintptr_t>(e.rows[r].ptr[0]);
  std::size_t o2;
  if (base % es == 0) {
    const std::uintptr_t addr = (base + o * es) & ~std::uintptr_t(63);
    o2 = addr <= base ? 0 : static_cast<std::size_t>((addr - base) / es);
  } else {
    o2 = o & ~std::size_t(64 / es - 1);
  }
  return e.prefix[r] + o2;
}

// Threads for a call moving `bytes`: one below the threshold, then one more per
// g_parallel_min_bytes moved, up to the setting and to the CPUs this process may run on.  A
// call never wakes more threads than it has work for, or than can run at once (a setting
// above the CPU count would only add preempted workers: Adam 1e6 on the 2-core VM took 231 us
// with 16 threads against 153 us with 2 before this cap, benchmarks/thread_settings.py), so
// more threads is never slower (the split, and hence the bits, do not depend on the count:
// see align_boundary).
int threads_for(std::size_t bytes) {
  const int nt = fastopt::threads::get_threads();
  if (nt <= 1 || bytes < g_parallel_min_bytes) return 1;
  if (g_parallel_min_bytes == 0) return nt;  // forced (tests): every thread, even oversubscribed
  const std::size_t want = bytes / g_parallel_min_bytes + 1;
  const int cap = std::min(nt, fastopt::threads::cpus());
  return static_cast<int>(std::min<std::size_t>(want, static_cast<std::size_t>(cap)));
}

// Runs `job` over `rows`.  With `check` (rows of Op::check_finite parallel to `rows`, see
// Exec), every gradient is checked first, in the same pool job, and nothing is written if one
// holds inf or NaN: returns false then (the rows' flags say which), else true.
bool execute(const Job& job, const std::vector<Row>& rows, int arrays_moved,
             const std::vector<Row>* check = nullptr) {
  const fastopt::RunFn fn = g_run.load();
  std::size_t bytes = 0;
  for (const Row& r : rows)
    bytes += r.n * (elem_size(r) * static_cast<std::size_t>(arrays_moved) + (r.master ? 8 : 0));
  const int nt = threads_for(bytes);
  if (nt <= 1) {
    if (check) {
      Job c;
      c.op = Op::check_finite;
      bool bad = false;
      for (const Row& r : *check) {
        fn(c, r, 0, r.n);
        bad = bad || *static_cast<int*>(r.ptr[1]) != 0;
      }
      if (bad) return false;
    }
    for (const Row& r : rows) fn(job, r, 0, r.n);
    return true;
  }
  Exec e;
  e.job = &job;
  e.rows = rows.data();
  e.nrows = rows.size();
  e.fn = fn;
  e.check_rows = check ? check->data() : nullptr;
  e.prefix.resize(rows.size() + 1);
  e.prefix[0] = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) e.prefix[r + 1] = e.prefix[r] + rows[r].n;
  const std::size_t total = e.prefix.back();
  std::size_t nchunks = std::max<std::size_t>(bytes / kChunkBytes, static_cast<std::size_t>(nt));
  nchunks = std::min<std::size_t>(nchunks, static_cast<std::size_t>(nt) * 16);
  // A multiple of the thread count: every worker's run has the same number of chunks.
  nchunks = (nchunks + static_cast<std::size_t>(nt) - 1) / static_cast<std::size_t>(nt) *
            static_cast<std::size_t>(nt);
  nchunks = std::min<std::size_t>(nchunks, std::max<std::size_t>(total / 64, 1));
  e.bounds.resize(nchunks + 1);
  e.bounds[0] = 0;
  for (std::size_t c = 1; c < nchunks; ++c)
    e.bounds[c] = std::max(
        e.bounds[c - 1],
        align_boundary(
            e, static_cast<std::size_t>(static_cast<unsigned __int128>(total) * c / nchunks)));
  e.bounds[nchunks] = total;
  const int nw = static_cast<int>(std::min<std::size_t>(nchunks, nt));
  e.nqueues = nw;
  e.queues.reset(new Queue[static_cast<std::size_t>(e.nqueues)]);
  for (int w = 0; w < e.nqueues; ++w) {
    e.queues[w].begin = nchunks * static_cast<std::size_t>(w) / static_cast<std::size_t>(e.nqueues);
    e.queues[w].end =
        nchunks * static_cast<std::size_t>(w + 1) / static_cast<std::size_t>(e.nqueues);
  }
  fastopt::threads::run(nw, &Exec::task, &e);
  return !e.bad.load(std::memory_order_relaxed);
}

// Arrays touched per element (reads + writes) for the threshold: every slot is read, every
// slot but the gradient is written.
int moved(const std::vector<Row>& rows) {
  if (rows.empty()) return 0;
  int k = 0;
  for (int s = 0; s < kMaxSlots; ++s) k += rows[0].ptr[s] ? (s == 1 ? 1 : 2) : 0;
  return k;
}

// ------------------------------------------------------------------ entry points
// The backend interface of fastopt._contract: step(kind, params, grads, state, scalars,
// names).  `kind` names the per-element rule, `state` maps torch's state names to lists of
// arrays (absent or None: unused), `scalars` maps the Job's field names to the per-step
// constants computed once, in double, by the contract.  One generic path for every
// optimizer: check every array and every name, fill the Job, release the GIL, run.
struct Kind {
  const char* name;
  Op op;
  int nstate;
  const char* state[kMaxSlots - 2];  // torch's state names, in slot order (slot 2, 3, ...)
  const char* arg[kMaxSlots - 2];    // the kernels' argument names (error messages)
  const char* scalars;               // the Job fields this rule reads, space separated
};

const Kind kKinds[] = {
    {"sgd",
     Op::sgd,
     1,
     {"momentum_buffer"},
     {"momentum_buffers"},
     "lr momentum one_minus_damp wd nesterov maximize"},
    {"adagrad", Op::adagrad, 1, {"sum"}, {"state_sums"}, "clr wd eps maximize"},
    {"rmsprop",
     Op::rmsprop,
     3,
     {"square_avg", "grad_avg", "momentum_buffer"},
     {"square_avgs", "grad_avgs", "momentum_buffers"},
     "lr alpha one_minus_alpha eps wd momentum centered maximize"},
    {"adam",
     Op::adam,
     3,
     {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
     {"exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"},
     "one_minus_beta1 beta2 one_minus_beta2 eps wd decay step_size inv_bc2_sqrt amsgrad "
     "maximize decoupled"},
    {"adamax",
     Op::adamax,
     2,
     {"exp_avg", "exp_inf"},
     {"exp_avgs", "exp_infs"},
     "one_minus_beta1 beta2 eps wd step_size maximize"},
    {"nadam",
     Op::nadam,
     2,
     {"exp_avg", "exp_avg_sq"},
     {"exp_avgs", "exp_avg_sqs"},
     "one_minus_beta1 beta2 one_minus_beta2 eps wd decay bias_correction2 grad_coef avg_coef "
     "maximize decoupled"},
    {"radam",
     Op::radam,
     2,
     {"exp_avg", "exp_avg_sq"},
     {"exp_avgs", "exp_avg_sqs"},
     "one_minus_beta1 beta2 one_minus_beta2 eps wd decay step_size rectify maximize decoupled"},
    {"adadelta",
     Op::adadelta,
     2,
     {"square_avg", "acc_delta"},
     {"square_avgs", "acc_deltas"},
     "lr rho one_minus_rho eps wd maximize"},
    {"adafactor_update",
     Op::adafactor_update,
     1,
     {"variance"},
     {"variances"},
     "weight eps lerp maximize"},
    {"muon_update",
     Op::muon_update,
     1,
     {"momentum_buffer"},
     {"momentum_buffers"},
     "weight momentum nesterov"},
    {"decay_add", Op::decay_add, 0, {}, {}, "wd decay step_size"},
    {"rprop",
     Op::rprop,
     2,
     {"prev", "step_size"},
     {"prevs", "step_size_buffers"},
     "lr etaminus etaplus step_size_min step_size_max first maximize"},
    {"asgd", Op::asgd, 1, {"ax"}, {"axs"}, "eta decay mu average wd maximize"},
};

// The Job's fields by name: a real (double) or a flag (bool).
struct Field {
  const char* name;
  double Job::* real;
  bool Job::* flag;
};
const Field kFields[] = {{"lr", &Job::lr, nullptr},
                         {"momentum", &Job::momentum, nullptr},
                         {"one_minus_damp", &Job::one_minus_damp, nullptr},
                         {"wd", &Job::wd, nullptr},
                         {"clr", &Job::clr, nullptr},
                         {"eps", &Job::eps, nullptr},
                         {"alpha", &Job::alpha, nullptr},
                         {"one_minus_alpha", &Job::one_minus_alpha, nullptr},
                         {"one_minus_beta1", &Job::one_minus_beta1, nullptr},
                         {"beta2", &Job::beta2, nullptr},
                         {"one_minus_beta2", &Job::one_minus_beta2, nullptr},
                         {"decay", &Job::decay, nullptr},
                         {"step_size", &Job::step_size, nullptr},
                         {"inv_bc2_sqrt", &Job::inv_bc2_sqrt, nullptr},
                         {"rho", &Job::rho, nullptr},
                         {"one_minus_rho", &Job::one_minus_rho, nullptr},
                         {"bias_correction2", &Job::bias_correction2, nullptr},
                         {"grad_coef", &Job::grad_coef, nullptr},
                         {"avg_coef", &Job::avg_coef, nullptr},
                         {"weight", &Job::weight, nullptr},
                         {"etaminus", &Job::etaminus, nullptr},
                         {"etaplus", &Job::etaplus, nullptr},
                         {"step_size_min", &Job::step_size_min, nullptr},
                         {"step_size_max", &Job::step_size_max, nullptr},
                         {"eta", &Job::eta, nullptr},
                         {"mu", &Job::mu, nullptr},
                         {"nesterov", nullptr, &Job::nesterov},
                         {"maximize", nullptr, &Job::maximize},
                         {"first", nullptr, &Job::first},
                         {"centered", nullptr, &Job::centered},
                         {"decoupled", nullptr, &Job::decoupled},
                         {"amsgrad", nullptr, &Job::amsgrad},
                         {"rectify", nullptr, &Job::rectify},
                         {"average", nullptr, &Job::average},
                         {"lerp", nullptr, &Job::lerp}};
constexpr int kNumFields = sizeof(kFields) / sizeof(kFields[0]);
using FieldMask = std::uint64_t;
static_assert(kNumFields <= 64, "the field masks are 64-bit");

// Is the word [w, w + n) one of the space-separated words of `list`?
bool listed(const char* list, const char* w, std::size_t n) {
  for (const char* p = list; *p;) {
    const char* e = p;
    while (*e && *e != ' ') ++e;
    if (static_cast<std::size_t>(e - p) == n && std::memcmp(p, w, n) == 0) return true;
    p = *e ? e + 1 : e;
  }
  return false;
}

// Bit f set: kFields[f] is a scalar of the rule (computed once per kind).
FieldMask fields_of(const Kind& k) {
  FieldMask mask = 0;
  for (int f = 0; f < kNumFields; ++f)
    if (listed(k.scalars, kFields[f].name, std::strlen(kFields[f].name))) mask |= FieldMask{1} << f;
  return mask;
}

// kFields index of a scalar's name (-1 if none).  The names come from fastopt._contract as
// interned string constants, so the same objects arrive at every step: a small cache by
// identity (holding a reference, so an address is never reused by another string) makes
// the lookup a few pointer compares.
int field_index(PyObject* key) {
  constexpr int kCache = 64;
  static PyObject* keys[kCache] = {};
  static int index[kCache] = {};
  static int used = 0;
  for (int c = 0; c < used; ++c)
    if (keys[c] == key) return index[c];
  Py_ssize_t len = 0;
  const char* w = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &len) : nullptr;
  if (!w) {
    PyErr_Clear();
    return -1;
  }
  int f = 0;
  for (; f < kNumFields; ++f)
    if (std::strlen(kFields[f].name) == static_cast<std::size_t>(len) &&
        std::memcmp(kFields[f].name, w, static_cast<std::size_t>(len)) == 0)
      break;
  if (f == kNumFields) return -1;
  if (used < kCache) {  // the GIL is held: no race
    Py_INCREF(key);
    keys[used] = key;
    index[used++] = f;
  }
  return f;
}

constexpr std::size_t kNumKinds = sizeof(kKinds) / sizeof(kKinds[0]);

// Interned names of each kind and of its state arrays, made once (the GIL is held).
struct KindNames {
  PyObject* kind = nullptr;
  PyObject* state[kMaxSlots - 2] = {};
  FieldMask fields = 0;  // bit f: kFields[f] is a scalar of the rule
};

const KindNames* kind_names() {
  static KindNames names[kNumKinds];
  static bool ready = false;
  if (!ready) {
    for (std::size_t i = 0; i < kNumKinds; ++i) {
      names[i].kind = PyUnicode_InternFromString(kKinds[i].name);
      for (int s = 0; s < kKinds[i].nstate; ++s)
        names[i].state[s] = PyUnicode_InternFromString(kKinds[i].state[s]);
      names[i].fields = fields_of(kKinds[i]);
    }
    ready = true;
  }
  return names;
}

// With check_finite, the gradients are read first (after every array check, in the same pool
// job as the update: see Exec): if any holds inf or NaN, nothing is written and the indices of
// those rows are returned (the caller reports or skips); otherwise the update runs and None is
// returned.  One call, one GIL release, one pool job: the check costs one extra read of the
// gradients and nothing more.
//
// `masters` (optional; one entry per row, None for a row without one): the float32 master
// copies of half params (master_weights=True).  A row's master is updated in place of its
// param, which is then written as the master rounded to nearest even, in the same pass; the
// gradient stays half.  Checked like every other array (float32, the param's shape,
// C-contiguous, writeable, sharing memory with no other array of the call).
py::object step(py::str kind_obj, py::object params, py::object grads, py::dict state,
                py::dict scalars, py::object names, bool check_finite, py::object masters) {
  const KindNames* kn = kind_names();
  std::size_t ki = 0;
  while (ki < kNumKinds && kind_obj.ptr() != kn[ki].kind) ++ki;  // interned: by identity
  if (ki == kNumKinds) {
    ki = 0;
    while (ki < kNumKinds && PyUnicode_CompareWithASCIIString(kind_obj.ptr(), kKinds[ki].name) != 0)
      ++ki;
  }
  if (ki == kNumKinds)
    throw py::value_error("unknown kernel kind " + py::repr(kind_obj).cast<std::string>() +
                          "; one of adadelta, adafactor_update, adagrad, adam, adamax, asgd, "
                          "decay_add, muon_update, nadam, radam, rmsprop, rprop, sgd");
  const Kind* k = &kKinds[ki];
  const std::string kind = k->name;  // for messages (short: no allocation)
  const FieldMask want = kn[ki].fields;
  // Scalars: every name must be a field this rule reads (or SGD's `first`), and each field
  // the rule reads must be given.
  Job j;
  j.op = k->op;
  FieldMask given = 0;
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(scalars.ptr(), &pos, &key, &value)) {
    const int f = field_index(key);
    if (f < 0 && !PyUnicode_Check(key))
      throw py::type_error("scalars must be a dict with string keys");
    const bool first = k->op == Op::sgd && f >= 0 && kFields[f].flag == &Job::first;
    if (f < 0 || (!((want >> f) & 1u) && !first))
      throw py::type_error(kind + " takes no scalar " + py::repr(key).cast<std::string>() +
                           "; it takes: " + k->scalars);
    if (kFields[f].real) {
      const double v = PyFloat_AsDouble(value);
      if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
      j.*(kFields[f].real) = v;
    } else {
      const int v = PyObject_IsTrue(value);
      if (v < 0) throw py::error_already_set();
      j.*(kFields[f].flag) = v != 0;
    }
    given |= FieldMask{1} << f;
  }
  if ((given & want) != want)
    throw py::type_error(kind + " needs every scalar of: " + std::string(k->scalars));
  // State: known names only, in the rule's slot order.
  pos = 0;
  while (PyDict_Next(state.ptr(), &pos, &key, &value)) {
    Py_ssize_t len = 0;
    const char* w = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &len) : nullptr;
    bool ok = false;
    for (int s = 0; w && s < k->nstate; ++s)
      ok = ok || (std::strlen(k->state[s]) == static_cast<std::size_t>(len) &&
                  std::memcmp(k->state[s], w, static_cast<std::size_t>(len)) == 0);
    if (!ok) throw py::type_error(kind + " has no state " + py::repr(key).cast<std::string>());
  }
  std::vector<Slot> slots;
  slots.reserve(3 + static_cast<std::size_t>(k->nstate));
  slots.push_back({"params", params, true});
  slots.push_back({"grads", grads, false});
  for (int s = 0; s < k->nstate; ++s) {
    py::object seq = py::none();
    if (PyObject* v = PyDict_GetItem(state.ptr(), kn[ki].state[s]))
      seq = py::reinterpret_borrow<py::object>(v);
    slots.push_back({k->arg[s], seq, true});
  }
  if (!masters.is_none()) slots.push_back({"masters", masters, true, true});
  std::vector<py::object> keep;
  auto rows = collect(slots, names, keep);
  if (k->op == Op::sgd && j.momentum == 0.0)
    for (Row& r : rows) r.ptr[2] = nullptr;  // the kernel ignores the buffer: do not count it
  if (!check_finite) {
    {
      py::gil_scoped_release nogil;
      execute(j, rows, moved(rows));
    }
    return py::none();  // with the GIL again: building the result touches a reference count
  }
  // The check rows, parallel to `rows` (same lengths, so the same chunks).
  std::vector<int> flags(rows.size(), 0);
  std::vector<Row> check_rows(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Row& r = check_rows[i];
    r.dtype = rows[i].dtype;
    r.n = rows[i].n;
    r.ptr[0] = rows[i].ptr[1];
    r.ptr[1] = &flags[i];
  }
  bool bad = false;
  {
    py::gil_scoped_release nogil;
    // One more array read per element: the threshold counts the check's read too.
    bad = !execute(j, rows, moved(rows) + 1, &check_rows);
  }
  if (!bad) return py::none();
  py::list out;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (flags[i]) out.append(i);
  return std::move(out);
}

// Indices of the arrays that hold a non-finite value (inf or NaN), in one threaded, vectorised
// read.  Anything that is not an aligned, C-contiguous float32/float64/float16/bfloat16
// ndarray is listed too,
// for the caller to examine (and to report) with NumPy.  The tuple snapshot holds every array
// alive while the GIL is released.
py::list nonfinite_rows(py::sequence seq) {
  const auto arrays = py::reinterpret_steal<py::tuple>(PySequence_Tuple(seq.ptr()));
  if (!arrays) throw py::error_already_set();
  const std::size_t n = arrays.size();
  std::vector<Row> rows;
  std::vector<std::size_t> index;
  std::vector<int> flags(n, 0);
  py::list out;
  rows.reserve(n);
  index.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    py::object obj = arrays[i];
    if (!py::isinstance<py::array>(obj)) {
      out.append(i);
      continue;
    }
    py::array a = obj.cast<py::array>();
    Row r{};
    if (!storage_of(a, r.dtype) || !(a.flags() & py::array::c_style) ||
        !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
      out.append(i);
      continue;
    }
    if (a.size() == 0) continue;
    r.n = static_cast<std::size_t>(a.size());
    r.ptr[0] = const_cast<void*>(a.data());
    r.ptr[1] = &flags[i];
    rows.push_back(r);
    index.push_back(i);
  }
  Job j;
  j.op = Op::check_finite;
  {
    py::gil_scoped_release nogil;
    execute(j, rows, 1);
  }
  for (std::size_t k = 0; k < rows.size(); ++k)
    if (flags[index[k]]) out.append(index[k]);
  out.attr("sort")();
  return out;
}

// Bandwidth probe over one set of same-size arrays: reads every array of the list and writes
// the first `nwrite` back, with the same ISA, threads and chunking as the optimizers.
void probe_rows(const std::vector<Row>& rows, int nread, int nwrite) {
  Job j;
  j.op = Op::probe;
  j.nread = nread;
  j.nwrite = nwrite;
  py::gil_scoped_release nogil;
  execute(j, rows, nread + nwrite);
}

void check_probe_counts(std::size_t nread, std::size_t nwrite) {
  if (nread < 1 || nread > static_cast<std::size_t>(kMaxSlots))
    throw py::value_error("probe takes 1 to 5 arrays per row, got " + std::to_string(nread));
  if (nwrite > nread) throw py::value_error("nwrite > number of arrays");
}

void probe(py::list arrays, std::size_t nwrite) {
  check_probe_counts(arrays.size(), nwrite);
  Row row{};
  std::vector<py::array> keep;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    py::array a = arrays[i].cast<py::array>();
    const bool f32 = a.dtype().equal(py::dtype::of<float>());
    if (!f32 && !a.dtype().equal(py::dtype::of<double>()))
      throw py::type_error("probe arrays must be float32 or float64");
    if (!(a.flags() & py::array::c_style) || !a.writeable() ||
        !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
      throw py::value_error("probe arrays must be C-contiguous, aligned and writeable");
    const DType dt = f32 ? DType::f32 : DType::f64;
    if (i == 0) {
      row.dtype = dt;
      row.n = static_cast<std::size_t>(a.size());
    } else if (static_cast<std::size_t>(a.size()) != row.n || dt != row.dtype) {
      throw py::value_error("probe arrays must have one size and one dtype");
    }
    row.ptr[i] = a.mutable_data();
    keep.push_back(a);
  }
  probe_rows({row}, static_cast<int>(arrays.size()), static_cast<int>(nwrite));
}

// Multi-tensor probe: `slots` is a list of lists (one list per role, one array per row, as
// the optimizers take them); the first `nwrite` roles are written.
void probe_many(py::list slot_lists, std::size_t nwrite) {
  check_probe_counts(slot_lists.size(), nwrite);
  static const char* roles[kMaxSlots] = {"a0", "a1", "a2", "a3", "a4"};
  std::vector<Slot> slots;
  for (std::size_t s = 0; s < slot_lists.size(); ++s)
    slots.push_back({roles[s], slot_lists[s], s < nwrite});
  std::vector<py::object> keep;
  auto rows = collect(slots, py::none(), keep);
  for (const Row& r : rows)
    if (is_half(r.dtype)) throw py::type_error("probe arrays must be float32 or float64");
  probe_rows(rows, static_cast<int>(slot_lists.size()), static_cast<int>(nwrite));
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "fastopt compiled kernels (multi-tensor, in place, GIL released, SIMD + threads)";
  g_memmap_type = py::object(py::module_::import("numpy").attr("memmap")).release().ptr();
  g_f32_descr = py::dtype::of<float>().release().ptr();
  g_f64_descr = py::dtype::of<double>().release().ptr();
  using namespace pybind11::literals;
  m.def("step", &step, "kind"_a, "params"_a, "grads"_a, "state"_a, "scalars"_a,
        "names"_a = py::none(), "check_finite"_a = false, "masters"_a = py::none(),
        "One multi-tensor update of optimizer `kind` (the backend interface of "
        "fastopt._contract): state = {state name: list of arrays or None}, scalars = "
        "{Job field: value}.  check_finite=True: if a gradient holds inf or NaN, write "
        "nothing and return the indices of those rows (else None).  masters: one float32 "
        "master copy per half param (or None): the update runs on the master and the param "
        "becomes its rounding, in one pass.");
  m.def("nonfinite_rows", &nonfinite_rows, "arrays"_a,
        "Indices of the arrays holding inf or NaN (and of any that are not C-contiguous "
        "float32/float64/float16/bfloat16 arrays, for the caller to check), in one threaded "
        "read.");
  m.def("probe", &probe, "arrays"_a, "nwrite"_a,
        "Bandwidth probe: read every array, write the first nwrite back (same threads/ISA).");
  m.def("probe_many", &probe_many, "slots"_a, "nwrite"_a,
        "Multi-tensor bandwidth probe: one list of arrays per role; the first nwrite roles are "
        "written.");
  m.def("isa", [] { return g_isa; }, "The instruction set the kernels run with now.");
  m.def(
      "supported_isas",
      [] {
        py::list out;
        for (const auto& s : supported_isas()) out.append(py::str(s));
        return out;
      },
      "Instruction sets compiled in and supported by this CPU, slowest first.");
  m.def("set_isa", &set_isa, "name"_a,
        "Force the kernels' instruction set: 'generic', 'avx2', 'avx512', 'avx512bf16' or 'auto' "
        "(the best).");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error("num_threads must be >= 1, got " + std::to_string(n));
        fastopt::threads::set_threads(n);
      },
      "n"_a);
  m.def("get_num_threads", &fastopt::threads::get_threads);
  m.def("default_num_threads", &fastopt::threads::default_threads);
  m.def("_cgroup_cpu_limit", &fastopt::threads::cgroup_cpu_limit, "proc_cgroup"_a, "root"_a,
        "The lowest CPU quota of the cgroups named in proc_cgroup under root (0: none; tests).");
  m.def("_pool_jobs", &fastopt::threads::pool_jobs,
        "Jobs handed to the thread pool so far (tests: a checked step is one job).");
  m.def("_set_parallel_min_bytes", [](std::size_t b) { g_parallel_min_bytes = b; }, "bytes"_a);
  m.def("_get_parallel_min_bytes", [] { return g_parallel_min_bytes; });
  m.def("_threads_for", &threads_for, "bytes"_a, "Threads a call moving `bytes` uses (tests).");

  // The ISA: FASTOPT_ISA if set (a warning if it cannot be honoured), else the best supported.
  set_isa("auto");
  if (const char* env = std::getenv("FASTOPT_ISA")) {
    std::string want(env);
    if (!want.empty()) {
      try {
        set_isa(want);
      } catch (py::error_already_set&) {
        throw;
      } catch (std::exception& ex) {
        PyErr_WarnEx(PyExc_RuntimeWarning,
                     ("FASTOPT_ISA=" + want + " ignored: " + ex.what()).c_str(), 1);
      }
    }
  }
}
