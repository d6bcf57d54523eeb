// The one pybind11 module of lfe, `lfe._C`: thin wrappers that turn tensors into pointers and
// lengths for the torch-free cores in cpu/ (and cuda/, when built with CUDA).
//
// lfe.IdMap validates IDs once at the Python boundary; the checks here only keep a direct
// caller of lfe._C from handing the core memory it cannot read (wrong dtype or device).
#include <torch/extension.h>

#include <cstdint>
#include <memory>

#include "cpu/id_map_cpu.h"

#ifdef WITH_CUDA
#include "cuda/binding_cuda.h"
#endif

namespace {

namespace py = pybind11;

// `ids` as a contiguous int64 CPU tensor, or a TypeError / ValueError naming what came.
torch::Tensor checked_cpu_ids(const torch::Tensor& ids) {
  TORCH_CHECK_TYPE(ids.scalar_type() == torch::kInt64, "ids must be an int64 tensor, got dtype ",
                   ids.scalar_type());
  TORCH_CHECK_VALUE(ids.device().is_cpu(), "ids must be on the CPU for the 'cpu' IdMap backend, ",
                    "got device ", ids.device());
  return ids.contiguous();
}

torch::Tensor insert(lfe::CpuIdMap& table, const torch::Tensor& ids) {
  const torch::Tensor clean_ids = checked_cpu_ids(ids);
  torch::Tensor rows = torch::empty_like(clean_ids);

  py::gil_scoped_release no_gil;
  table.insert(clean_ids.data_ptr<int64_t>(), clean_ids.numel(), rows.data_ptr<int64_t>());
  return rows;
}

torch::Tensor lookup(const lfe::CpuIdMap& table, const torch::Tensor& ids) {
  const torch::Tensor clean_ids = checked_cpu_ids(ids);
  torch::Tensor rows = torch::empty_like(clean_ids);

  py::gil_scoped_release no_gil;
  table.lookup(clean_ids.data_ptr<int64_t>(), clean_ids.numel(), rows.data_ptr<int64_t>());
  return rows;
}

torch::Tensor contains(const lfe::CpuIdMap& table, const torch::Tensor& ids) {
  const torch::Tensor clean_ids = checked_cpu_ids(ids);
  torch::Tensor found = torch::empty(clean_ids.sizes(), clean_ids.options().dtype(torch::kBool));

  py::gil_scoped_release no_gil;
  table.contains(clean_ids.data_ptr<int64_t>(), clean_ids.numel(), found.data_ptr<bool>());
  return found;
}

torch::Tensor ids_in_row_order(const lfe::CpuIdMap& table) {
  torch::Tensor ids = torch::empty({table.size()}, torch::dtype(torch::kInt64));

  // The map may have been truncated by another thread since size() was read.
  const int64_t copied = table.copy_ids(ids.data_ptr<int64_t>(), ids.numel());
  return copied == ids.numel() ? ids : ids.narrow(0, 0, copied).clone();
}

double mean_probe_length(const lfe::CpuIdMap& table, const torch::Tensor& ids) {
  const torch::Tensor clean_ids = checked_cpu_ids(ids);

  py::gil_scoped_release no_gil;
  return table.mean_probe_length(clean_ids.data_ptr<int64_t>(), clean_ids.numel());
}

void register_cpu_bindings(py::module_& m) {
  py::class_<lfe::CpuIdMap>(m, "CpuIdMap",
                            "CPU open-addressing hash table from int64 IDs to rows 0, 1, 2, ...")
      .def(py::init<int64_t, double>(), py::arg("capacity") = 0,
           py::arg("max_load_factor") = lfe::CpuIdMap::kDefaultMaxLoadFactor)
      .def("insert", &insert, py::arg("ids"),
           "Rows of ids (same shape); unseen IDs get new rows in first-occurrence order.")
      .def("lookup", &lookup, py::arg("ids"), "Rows of ids (same shape), -1 for unknown IDs.")
      .def("contains", &contains, py::arg("ids"), "Bool tensor: which ids are in the table.")
      .def("size", &lfe::CpuIdMap::size, "Number of IDs in the table.")
      .def("capacity", &lfe::CpuIdMap::capacity, "Number of slots allocated.")
      .def("max_load_factor", &lfe::CpuIdMap::max_load_factor)
      .def("ids", &ids_in_row_order, "All IDs in row order (a new int64 tensor).")
      .def("reserve", &lfe::CpuIdMap::reserve, py::arg("num_ids"),
           py::call_guard<py::gil_scoped_release>(), "Make room for num_ids IDs.")
      .def("truncate", &lfe::CpuIdMap::truncate, py::arg("num_ids"),
           py::call_guard<py::gil_scoped_release>(), "Forget IDs with rows >= num_ids.")
      .def("mean_probe_length", &mean_probe_length, py::arg("ids"),
           "Mean number of slots a lookup of ids examines (diagnostic).");
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "lfe's compiled hash tables (CPU, and CUDA where built)";
  register_cpu_bindings(m);

#ifdef WITH_CUDA
  m.attr("with_cuda") = true;
  lfe::register_cuda_bindings(m);
#else
  m.attr("with_cuda") = false;
#endif
}
