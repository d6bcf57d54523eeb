// Python bindings of the CUDA hash table, compiled only when the extension is built WITH_CUDA.
#pragma once

#include <pybind11/pybind11.h>

namespace lfe {

// Add the class `CudaIdMap`, the table behind the "cuda" IdMap backend, to module `m`.
void register_cuda_bindings(pybind11::module_& m);

}  // namespace lfe
