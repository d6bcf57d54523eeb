"""Build for lfe: the pure-Python package, the C++ extension and, where possible, CUDA.

The compiled extension `lfe._C` holds the CPU hash table (always built) and, when torch
has CUDA and nvcc is found, the CUDA hash table as well. Switches, read from the
environment so that `pip install` needs no extra arguments:

    LFE_SKIP_CUDA=1    never build the CUDA part
    LFE_FORCE_CUDA=1   build the CUDA part even if torch reports no CUDA toolkit
    LFE_STRICT_BUILD=1 fail the install when the extension does not compile
                       (by default a failed build is a warning and the PyTorch backend runs)

Whether a GPU is visible never matters: build machines often have none.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import warnings

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _sources(pattern: str) -> list[str]:
    return sorted(os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, pattern)))


def _want_cuda() -> bool:
    if _env_flag("LFE_SKIP_CUDA"):
        return False
    if _env_flag("LFE_FORCE_CUDA"):
        return True
    import torch
    from torch.utils.cpp_extension import CUDA_HOME

    return torch.version.cuda is not None and CUDA_HOME is not None


def _openmp_flags() -> tuple[list[str], list[str]]:
    if sys.platform == "darwin":
        return [], []
    return ["-fopenmp"], ["-fopenmp"]


def _extensions():
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    core_sources = _sources("csrc/core/*.cpp") + _sources("csrc/cpu/*.cpp")
    binding = _sources("csrc/binding.cpp")
    if not binding:
        return []

    openmp_compile, openmp_link = _openmp_flags()
    # Hidden visibility, as pybind11 expects: only PyInit__C is exported from the module.
    cxx_flags = ["-O3", "-std=c++17", "-fvisibility=hidden", *openmp_compile]
    include_dirs = [os.path.join(ROOT, "csrc")]

    if _want_cuda():
        cuda_sources = _sources("csrc/cuda/*.cu")
        arch_list = os.environ.get("TORCH_CUDA_ARCH_LIST")
        # No -std here: torch's build helper then adds the standard its own headers need
        # (C++20 for torch 2.13, whose headers use C++20 features such as bit-field initialisers).
        nvcc_flags = ["-O3", "--expt-relaxed-constexpr"]
        if not arch_list:
            nvcc_flags += [
                "-gencode=arch=compute_80,code=sm_80",
                "-gencode=arch=compute_90,code=sm_90",
            ]
        return [
            CUDAExtension(
                name="lfe._C",
                sources=binding + core_sources + cuda_sources,
                include_dirs=include_dirs,
                define_macros=[("WITH_CUDA", None)],
                extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
                extra_link_args=openmp_link,
            )
        ]
    return [
        CppExtension(
            name="lfe._C",
            sources=binding + core_sources,
            include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=openmp_link,
        )
    ]


def _build_ext_class():
    from torch.utils.cpp_extension import BuildExtension

    class OptionalBuildExtension(BuildExtension):
        """Turn a failed compile into a warning unless LFE_STRICT_BUILD is set."""

        def run(self) -> None:
            try:
                super().run()
            except Exception as error:  # compiler missing or broken: the torch backend still runs
                if _env_flag("LFE_STRICT_BUILD"):
                    raise
                warnings.warn(
                    f"lfe: the C++ extension did not build ({error}); the pure-PyTorch backend "
                    "will be used. Install a C++17 compiler and reinstall to build it.",
                    stacklevel=1,
                )

    return OptionalBuildExtension


def _cmdclass_and_extensions():
    try:
        import torch  # noqa: F401
    except ImportError:
        warnings.warn(
            "lfe: torch is not importable in the build environment, so the C++ extension is not "
            "built. Install torch first, then `pip install --no-build-isolation .`.",
            stacklevel=1,
        )
        return {}, []
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        warnings.warn("lfe: no C++ compiler found; the C++ extension is not built.", stacklevel=1)
        return {}, []
    return {"build_ext": _build_ext_class().with_options(use_ninja=True)}, _extensions()


cmdclass, ext_modules = _cmdclass_and_extensions()

setup(
    packages=[
        "lfe",
        "lfe.id_map",
        "lfe.modules",
        "lfe.init",
        "lfe.datasets",
        "lfe.experiment",
        "lfe.kernels",
    ],
    package_dir={"lfe.kernels": "kernels"},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
