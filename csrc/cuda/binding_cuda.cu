// The torch face of the CUDA hash table: checks tensors at the boundary, then hands raw
// pointers, lengths and torch's current stream to the torch-free core (id_map_cuda.cuh).
#include "cuda/binding_cuda.h"

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include <memory>

#include "cuda/id_map_cuda.cuh"

namespace lfe {
namespace {

// torch's caching allocator: the table and its temporaries come from torch's memory pool, so
// they are reused without cudaMalloc and counted by torch.cuda.memory_allocated().
class TorchCachingAllocator final : public cuda::DeviceAllocator {
 public:
  void* allocate(std::size_t bytes, cudaStream_t stream) override {
    return c10::cuda::CUDACachingAllocator::raw_alloc_with_stream(bytes, stream);
  }

  // The block returns to the pool of the stream it was allocated on. That is safe because the
  // calls on one map are ordered on one stream (the rule stated in id_map_cuda.cuh).
  void deallocate(void* pointer, std::size_t, cudaStream_t) override {
    c10::cuda::CUDACachingAllocator::raw_delete(pointer);
  }
};

// A DeviceIdMap pinned to one device and driven on torch's current stream of that device.
class CudaIdMap {
 public:
  CudaIdMap(int64_t device_index, int64_t capacity)
      : device_index_(static_cast<c10::DeviceIndex>(device_index)) {
    TORCH_CHECK_VALUE(capacity >= 0, "capacity must be >= 0, got ", capacity);
    const c10::cuda::CUDAGuard guard(device_index_);
    table_ = std::make_unique<cuda::DeviceIdMap>(capacity, stream(),
                                                 std::make_shared<TorchCachingAllocator>());
  }

  at::Tensor insert(const at::Tensor& ids) {
    check_ids(ids);
    const c10::cuda::CUDAGuard guard(device_index_);
    at::Tensor rows = at::empty_like(ids);
    table_->insert(ids.data_ptr<int64_t>(), ids.numel(), rows.data_ptr<int64_t>(), stream());
    return rows;
  }

  at::Tensor lookup(const at::Tensor& ids) const {
    check_ids(ids);
    const c10::cuda::CUDAGuard guard(device_index_);
    at::Tensor rows = at::empty_like(ids);
    table_->lookup_async(ids.data_ptr<int64_t>(), ids.numel(), rows.data_ptr<int64_t>(),
                         stream());
    return rows;
  }

  at::Tensor contains(const at::Tensor& ids) const {
    check_ids(ids);
    const c10::cuda::CUDAGuard guard(device_index_);
    at::Tensor found = at::empty_like(ids, ids.options().dtype(at::kBool));
    table_->contains_async(ids.data_ptr<int64_t>(), ids.numel(), found.data_ptr<bool>(),
                           stream());
    return found;
  }

  at::Tensor ids() const {
    const c10::cuda::CUDAGuard guard(device_index_);
    at::Tensor ids = at::empty({table_->size()}, at::TensorOptions()
                                                     .dtype(at::kLong)
                                                     .device(at::kCUDA, device_index_));
    table_->copy_ids_async(ids.data_ptr<int64_t>(), stream());
    return ids;
  }

  int64_t size() const { return table_->size(); }

  int64_t capacity() const { return table_->capacity(); }

  void reserve(int64_t num_ids) {
    TORCH_CHECK_VALUE(num_ids >= 0, "num_ids must be >= 0, got ", num_ids);
    const c10::cuda::CUDAGuard guard(device_index_);
    table_->reserve(num_ids, stream());
  }

  void truncate(int64_t num_ids) {
    TORCH_CHECK_VALUE(num_ids >= 0 && num_ids <= table_->size(), "num_ids must be in [0, ",
                      table_->size(), "], got ", num_ids);
    const c10::cuda::CUDAGuard guard(device_index_);
    table_->truncate(num_ids, stream());
  }

 private:
  void check_ids(const at::Tensor& ids) const {
    TORCH_CHECK_VALUE(ids.is_cuda() && ids.get_device() == device_index_,
                      "ids must be on cuda:", static_cast<int>(device_index_),
                      " like the map, got a tensor on ", ids.device());
    TORCH_CHECK_TYPE(ids.scalar_type() == at::kLong, "ids must be int64, got ", ids.scalar_type());
    TORCH_CHECK_VALUE(ids.dim() == 1 && ids.is_contiguous(),
                      "ids must be a contiguous 1-D tensor, got shape ", ids.sizes());
  }

  // The stream at::cuda::getCurrentCUDAStream() returns, from the light c10 header.
  cudaStream_t stream() const { return c10::cuda::getCurrentCUDAStream(device_index_).stream(); }

  c10::DeviceIndex device_index_;
  std::unique_ptr<cuda::DeviceIdMap> table_;
};

}  // namespace

void register_cuda_bindings(pybind11::module_& m) {
  namespace py = pybind11;
  // insert, reserve and truncate may wait for the GPU, so they let other Python threads run.
  using ReleaseGil = py::call_guard<py::gil_scoped_release>;
  py::class_<CudaIdMap>(m, "CudaIdMap",
                        "Hash table in GPU memory from int64 IDs to rows 0, 1, 2, ... in "
                        "first-insertion order (the 'cuda' IdMap backend).")
      .def(py::init<int64_t, int64_t>(), py::arg("device_index"), py::arg("capacity") = 0)
      .def("insert", &CudaIdMap::insert, py::arg("ids"), ReleaseGil(),
           "Rows of the contiguous 1-D int64 CUDA tensor `ids`, inserting unseen IDs.")
      .def("lookup", &CudaIdMap::lookup, py::arg("ids"), "Rows of `ids`, -1 where absent.")
      .def("contains", &CudaIdMap::contains, py::arg("ids"), "Bool tensor: which IDs are in.")
      .def("ids", &CudaIdMap::ids, "All IDs in row order, as a new int64 CUDA tensor.")
      .def("size", &CudaIdMap::size, "Number of IDs.")
      .def("capacity", &CudaIdMap::capacity, "Number of slots allocated.")
      .def("reserve", &CudaIdMap::reserve, py::arg("num_ids"), ReleaseGil(),
           "Make room for `num_ids` IDs without further growth.")
      .def("truncate", &CudaIdMap::truncate, py::arg("num_ids"), ReleaseGil(),
           "Forget the IDs with rows >= `num_ids`.");
}

}  // namespace lfe
