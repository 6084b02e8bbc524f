#pragma once
// Device-side conversion of loader batches to network input (reference semantics 2.2 step 4).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

namespace dml {

// uint8 [B, C, H, W] (any device; pinned CPU for an overlapped copy) -> float32 [B, C, H, W] on `device`:
// (x/255 - mean[c]) / std[c]. The copy is non_blocking. mean/std need C entries, or any number >= 1 when
// C == 1 (the first entry is used). Throws dml::Error on a wrong dtype, rank or mean/std length.
at::Tensor normalize_images(const at::Tensor& images_u8, const c10::Device& device,
                            const std::vector<double>& mean = {0.485, 0.456, 0.406},
                            const std::vector<double>& std = {0.229, 0.224, 0.225});

}  // namespace dml
