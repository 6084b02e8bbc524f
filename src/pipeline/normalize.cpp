#include "dml/pipeline/normalize.h"

#include <torch/torch.h>

#include <map>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "dml/util/error.h"

namespace dml {
namespace {
// The per-channel constants, made once per (device, values) and kept there: no host-to-device
// copy (on a GPU a synchronous one, from pageable memory) per batch. Loader and evaluation threads
// share the cache.
std::pair<at::Tensor, at::Tensor> constants_on(const c10::Device& device, const std::vector<float>& mean,
                                               const std::vector<float>& std) {
  using Key = std::tuple<int, int, std::vector<float>, std::vector<float>>;
  static std::mutex mutex;
  static std::map<Key, std::pair<at::Tensor, at::Tensor>> cache;
  const Key key{static_cast<int>(device.type()), device.index(), mean, std};
  std::lock_guard<std::mutex> lock(mutex);
  auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  const int64_t channels = static_cast<int64_t>(mean.size());
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  std::pair<at::Tensor, at::Tensor> made{torch::tensor(mean, opts).to(device).view({1, channels, 1, 1}),
                                         torch::tensor(std, opts).to(device).view({1, channels, 1, 1})};
  cache.emplace(key, made);
  return made;
}
}  // namespace

at::Tensor normalize_images(const at::Tensor& images_u8, const c10::Device& device, const std::vector<double>& mean,
                            const std::vector<double>& std) {
  check(images_u8.defined() && images_u8.dim() == 4 && images_u8.scalar_type() == torch::kUInt8,
        "normalize_images: expects uint8 [B, C, H, W] images from a loader, got ",
        images_u8.defined() ? str(images_u8.scalar_type(), " ", images_u8.sizes()) : std::string("undefined"));
  const int64_t channels = images_u8.size(1);
  const int64_t given = static_cast<int64_t>(std::min(mean.size(), std.size()));
  check(mean.size() == std.size() && (given == channels || (channels == 1 && given >= 1)),
        "normalize_images: ", channels, "-channel images need ", channels, " mean and std values, got ",
        mean.size(), " and ", std.size(), "; pass one value per channel");
  std::vector<float> mean_c(static_cast<size_t>(channels)), std_c(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    mean_c[static_cast<size_t>(c)] = static_cast<float>(mean[static_cast<size_t>(c)]);
    std_c[static_cast<size_t>(c)] = static_cast<float>(std[static_cast<size_t>(c)]);
    check(std_c[static_cast<size_t>(c)] > 0.0f, "normalize_images: std[", c, "] is ", std[static_cast<size_t>(c)],
          "; standard deviations must be positive");
  }
  // The uint8 batch crosses to the device (4x less traffic than float) and is converted there.
  const at::Tensor x = images_u8.to(device, /*non_blocking=*/true).to(torch::kFloat32);
  const auto [mean_t, std_t] = constants_on(device, mean_c, std_c);
  return x.div(255.0).sub_(mean_t).div_(std_t);
}

}  // namespace dml
