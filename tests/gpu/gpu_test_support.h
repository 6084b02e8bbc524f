#pragma once
// Shared by the gpu suites (tests/gpu): when they can run. Every GPU test skips (GTEST_SKIP, never fails)
// where this build has no NCCL communicator (a CPU LibTorch, e.g. Debian's) or this node has too few
// CUDA devices, so the suites build and pass on machines without a GPU; launch/gpu_check.sh runs them
// where there is one. Only torch's device-independent API is used here, so the suites compile against a
// CPU LibTorch too.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <string>

#include "dml/dist/communicator.h"

namespace dml::test {

inline bool nccl_built() {
  const auto built = built_backends();
  return std::find(built.begin(), built.end(), "nccl") != built.end();
}

inline int cuda_devices() { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; }

// Empty when the test can run on `gpus` GPUs; otherwise why not.
inline std::string why_not_on_gpus(int gpus) {
  if (!nccl_built()) return "this build has no NCCL communicator (CPU LibTorch): GPU tests skip";
  const int have = cuda_devices();
  if (have < gpus) {
    return "needs " + std::to_string(gpus) + " CUDA device(s), this node has " + std::to_string(have);
  }
  return {};
}

}  // namespace dml::test

// Skips the current test unless the build has NCCL and the node at least `gpus` CUDA devices.
#define DML_SKIP_UNLESS_GPUS(gpus)                                            \
  do {                                                                        \
    const std::string dml_why_not_ = ::dml::test::why_not_on_gpus(gpus);      \
    if (!dml_why_not_.empty()) GTEST_SKIP() << dml_why_not_;                  \
  } while (0)
