// Python bindings of the fastopt kernels (module fastopt._native).
//
// Every entry point is multi-tensor: it takes lists of arrays (one row per parameter:
// the parameter, its gradient and its state arrays), checks every array of every row
// before touching any, then releases the GIL and runs the kernels.  A check that fails
// raises TypeError/ValueError naming the array, the value and the fix, and nothing has
// been written.  Non-contiguous gradients are read through a contiguous copy (they are
// inputs only); parameters and state must be C-contiguous and writeable, because
// updating a copy would silently lose the update.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "fastopt/kernels.hpp"

namespace py = pybind11;
namespace fk = fastopt::kernels;

namespace {

enum class DType { f32, f64 };

constexpr int kMaxSlots = 5;

struct Row {
  DType dtype;
  std::size_t n;
  void* ptr[kMaxSlots];  // slot 0: param, slot 1: grad, 2..: state (nullptr if absent)
};

struct Slot {
  const char* role;  // "params", "grads", "exp_avgs", ...
  py::object seq;    // a sequence of arrays, or None if the slot is unused
  bool writable;
};

std::string key_of(const py::object& names, std::size_t i) {
  if (!names.is_none()) return py::repr(names[py::int_(i)]).cast<std::string>();
  return std::to_string(i);
}

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    s << a.shape(d);
    if (a.ndim() == 1 || d + 1 < a.ndim()) s << (a.ndim() == 1 ? "," : ", ");
  }
  s << ")";
  return s.str();
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

struct Interval {
  std::uintptr_t lo, hi;
  bool writable;
  std::string label;
};

// Check every slot of every row and collect raw pointers.  `keep` holds contiguous copies of
// non-contiguous gradients alive until the kernels have run.
std::vector<Row> collect(std::vector<Slot>& slots, const py::object& names,
                         std::vector<py::object>& keep) {
  const std::size_t nslots = slots.size();
  std::vector<py::sequence> seqs(nslots);
  std::size_t nrows = 0;
  for (std::size_t s = 0; s < nslots; ++s) {
    if (slots[s].seq.is_none()) continue;
    if (!py::isinstance<py::sequence>(slots[s].seq))
      throw py::type_error(std::string(slots[s].role) + " must be a list of numpy arrays, got " +
                           py::str(py::type::of(slots[s].seq)).cast<std::string>());
    seqs[s] = slots[s].seq.cast<py::sequence>();
    const std::size_t len = seqs[s].size();
    if (s == 0) nrows = len;
    else if (len != nrows)
      throw py::value_error(std::string(slots[s].role) + " has " + std::to_string(len) +
                            " arrays but params has " + std::to_string(nrows) +
                            "; pass exactly one per parameter, in the same order");
  }
  std::vector<Row> rows(nrows);
  std::vector<Interval> intervals;
  intervals.reserve(nrows * nslots);
  for (std::size_t i = 0; i < nrows; ++i) {
    Row& row = rows[i];
    py::array p0;
    for (std::size_t s = 0; s < nslots; ++s) {
      row.ptr[s] = nullptr;
      if (slots[s].seq.is_none()) continue;
      py::object obj = seqs[s][i];
      const std::string label = std::string(slots[s].role) + "[" + key_of(names, i) + "]";
      if (!py::isinstance<py::array>(obj))
        throw py::type_error(label + " must be a numpy array, got " +
                             py::str(py::type::of(obj)).cast<std::string>() +
                             "; convert it with np.asarray(...)");
      py::array a = obj.cast<py::array>();
      if (s == 0) {
        if (a.dtype().is(py::dtype::of<float>())) row.dtype = DType::f32;
        else if (a.dtype().is(py::dtype::of<double>())) row.dtype = DType::f64;
        else if (a.dtype().equal(py::dtype::of<float>())) row.dtype = DType::f32;
        else if (a.dtype().equal(py::dtype::of<double>())) row.dtype = DType::f64;
        else
          throw py::type_error(label + " has dtype " + dtype_str(a) +
                               "; fastopt updates float32 or float64 arrays in place: "
                               "create the parameter with dtype=np.float32 or np.float64");
        row.n = static_cast<std::size_t>(a.size());
        p0 = a;
      } else {
        if (!a.dtype().equal(p0.dtype()))
          throw py::type_error(label + " has dtype " + dtype_str(a) + " but its parameter has " +
                               dtype_str(p0) + "; pass an array of dtype " + dtype_str(p0) +
                               " (for example g.astype(np." + dtype_str(p0) + "))");
        bool same_shape = a.ndim() == p0.ndim();
        for (py::ssize_t d = 0; same_shape && d < a.ndim(); ++d)
          same_shape = a.shape(d) == p0.shape(d);
        if (!same_shape)
          throw py::value_error(label + " has shape " + shape_str(a) + " but its parameter has " +
                                shape_str(p0) + "; pass an array of the parameter's shape");
      }
      const bool contiguous = (a.flags() & py::array::c_style) != 0;
      if (slots[s].writable) {
        if (!contiguous)
          throw py::value_error(label + " is not C-contiguous; fastopt updates arrays in place "
                                "and will not update a copy: use np.ascontiguousarray(...) "
                                "once when you create it and keep that array");
        if (!a.writeable())
          throw py::value_error(label + " is read-only; fastopt updates it in place: pass a "
                                "writeable array (a.setflags(write=True) or a.copy())");
      } else if (!contiguous) {
        py::object c = py::module_::import("numpy").attr("ascontiguousarray")(a);
        keep.push_back(c);
        a = c.cast<py::array>();
      }
      row.ptr[s] = const_cast<void*>(a.data());
      if (row.n > 0) {
        const auto lo = reinterpret_cast<std::uintptr_t>(a.data());
        intervals.push_back({lo, lo + static_cast<std::uintptr_t>(a.nbytes()), slots[s].writable, label});
      }
    }
  }
  // No array written by this call may share memory with any other array of the call.
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& x, const Interval& y) { return x.lo < y.lo; });
  std::uintptr_t end_all = 0, end_w = 0;
  const Interval* last_all = nullptr;
  const Interval* last_w = nullptr;
  for (const Interval& iv : intervals) {
    const Interval* clash = nullptr;
    if (iv.writable && last_all && iv.lo < end_all) clash = last_all;
    else if (!iv.writable && last_w && iv.lo < end_w) clash = last_w;
    if (clash)
      throw py::value_error(iv.label + " shares memory with " + clash->label +
                            "; every parameter, gradient and state array must be a separate "
                            "array (pass grad.copy() if the gradient is a view of a parameter)");
    if (iv.hi > end_all) { end_all = iv.hi; last_all = &iv; }
    if (iv.writable && iv.hi > end_w) { end_w = iv.hi; last_w = &iv; }
  }
  return rows;
}

template <class T>
T* P(const Row& r, int s) { return static_cast<T*>(r.ptr[s]); }

void sgd(py::object params, py::object grads, py::object bufs, double lr, double momentum,
         double dampening, double wd, bool nesterov, bool maximize, bool first, py::object names) {
  std::vector<Slot> slots{{"params", params, true}, {"grads", grads, false},
                          {"momentum_buffers", bufs, true}};
  std::vector<py::object> keep;
  auto rows = collect(slots, names, keep);
  py::gil_scoped_release nogil;
  for (const Row& r : rows) {
    if (r.dtype == DType::f32)
      fk::sgd<float>(P<float>(r, 0), P<float>(r, 1), P<float>(r, 2), r.n, float(lr),
                     float(momentum), float(1.0 - dampening), float(wd), nesterov, maximize,
                     first);
    else
      fk::sgd<double>(P<double>(r, 0), P<double>(r, 1), P<double>(r, 2), r.n, lr, momentum,
                      1.0 - dampening, wd, nesterov, maximize, first);
  }
}

void adagrad(py::object params, py::object grads, py::object sums, double clr, double wd,
             double eps, bool maximize, py::object names) {
  std::vector<Slot> slots{{"params", params, true}, {"grads", grads, false},
                          {"state_sums", sums, true}};
  std::vector<py::object> keep;
  auto rows = collect(slots, names, keep);
  py::gil_scoped_release nogil;
  for (const Row& r : rows) {
    if (r.dtype == DType::f32)
      fk::adagrad<float>(P<float>(r, 0), P<float>(r, 1), P<float>(r, 2), r.n, float(clr),
                         float(wd), float(eps), maximize);
    else
      fk::adagrad<double>(P<double>(r, 0), P<double>(r, 1), P<double>(r, 2), r.n, clr, wd, eps,
                          maximize);
  }
}

void rmsprop(py::object params, py::object grads, py::object square_avgs, py::object grad_avgs,
             py::object bufs, double lr, double alpha, double eps, double wd, double momentum,
             bool centered, bool maximize, py::object names) {
  std::vector<Slot> slots{{"params", params, true}, {"grads", grads, false},
                          {"square_avgs", square_avgs, true}, {"grad_avgs", grad_avgs, true},
                          {"momentum_buffers", bufs, true}};
  std::vector<py::object> keep;
  auto rows = collect(slots, names, keep);
  py::gil_scoped_release nogil;
  for (const Row& r : rows) {
    if (r.dtype == DType::f32)
      fk::rmsprop<float>(P<float>(r, 0), P<float>(r, 1), P<float>(r, 2), P<float>(r, 3),
                         P<float>(r, 4), r.n, float(lr), float(alpha), float(1.0 - alpha), float(eps), float(wd),
                         float(momentum), centered, maximize);
    else
      fk::rmsprop<double>(P<double>(r, 0), P<double>(r, 1), P<double>(r, 2), P<double>(r, 3),
                          P<double>(r, 4), r.n, lr, alpha, 1.0 - alpha, eps, wd, momentum, centered,
                          maximize);
  }
}

void adam(py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
          py::object max_exp_avg_sqs, double beta1, double beta2, double eps, double wd,
          double decay, double step_size, double bc2_sqrt, bool decoupled, bool amsgrad,
          bool maximize, py::object names) {
  std::vector<Slot> slots{{"params", params, true}, {"grads", grads, false},
                          {"exp_avgs", exp_avgs, true}, {"exp_avg_sqs", exp_avg_sqs, true},
                          {"max_exp_avg_sqs", max_exp_avg_sqs, true}};
  std::vector<py::object> keep;
  auto rows = collect(slots, names, keep);
  py::gil_scoped_release nogil;
  for (const Row& r : rows) {
    if (r.dtype == DType::f32)
      fk::adam<float>(P<float>(r, 0), P<float>(r, 1), P<float>(r, 2), P<float>(r, 3),
                      P<float>(r, 4), r.n, float(1.0 - beta1), float(beta2), float(1.0 - beta2),
                      float(eps), float(wd),
                      float(decay), float(step_size), float(bc2_sqrt), decoupled, amsgrad,
                      maximize);
    else
      fk::adam<double>(P<double>(r, 0), P<double>(r, 1), P<double>(r, 2), P<double>(r, 3),
                       P<double>(r, 4), r.n, 1.0 - beta1, beta2, 1.0 - beta2, eps, wd, decay, step_size,
                       bc2_sqrt,
                       decoupled, amsgrad, maximize);
  }
}

// Bandwidth probe: reads every array of the list and writes the first `nwrite` back.
void probe(py::list arrays, std::size_t nwrite) {
  std::vector<float*> ptrs;
  std::size_t n = 0;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    auto a = arrays[i].cast<py::array_t<float, py::array::c_style>>();
    if (!a.writeable()) throw py::value_error("probe arrays must be writeable");
    if (i == 0) n = static_cast<std::size_t>(a.size());
    else if (static_cast<std::size_t>(a.size()) != n) throw py::value_error("probe arrays must have one size");
    ptrs.push_back(a.mutable_data());
  }
  if (nwrite > ptrs.size()) throw py::value_error("nwrite > number of arrays");
  py::gil_scoped_release nogil;
  fk::probe<float>(ptrs.data(), ptrs.size(), nwrite, n);
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "fastopt compiled kernels (multi-tensor, in place, GIL released)";
  using namespace pybind11::literals;
  m.def("sgd", &sgd, "params"_a, "grads"_a, "momentum_buffers"_a, "lr"_a, "momentum"_a,
        "dampening"_a, "weight_decay"_a, "nesterov"_a, "maximize"_a, "first"_a,
        "names"_a = py::none());
  m.def("adagrad", &adagrad, "params"_a, "grads"_a, "state_sums"_a, "clr"_a, "weight_decay"_a,
        "eps"_a, "maximize"_a, "names"_a = py::none());
  m.def("rmsprop", &rmsprop, "params"_a, "grads"_a, "square_avgs"_a, "grad_avgs"_a,
        "momentum_buffers"_a, "lr"_a, "alpha"_a, "eps"_a, "weight_decay"_a, "momentum"_a,
        "centered"_a, "maximize"_a, "names"_a = py::none());
  m.def("adam", &adam, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a,
        "max_exp_avg_sqs"_a, "beta1"_a, "beta2"_a, "eps"_a, "weight_decay"_a, "decay"_a,
        "step_size"_a, "bc2_sqrt"_a, "decoupled"_a, "amsgrad"_a, "maximize"_a,
        "names"_a = py::none());
  m.def("probe", &probe, "arrays"_a, "nwrite"_a);
  m.attr("isa") = "generic";
}
