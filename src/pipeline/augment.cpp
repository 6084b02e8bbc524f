#include "dml/pipeline/augment.h"

#include <algorithm>

#include "dml/util/counter_rng.h"
#include "dml/util/error.h"

namespace dml {

void validate_augment(int64_t height, int64_t width, int64_t channels, const AugmentOptions& options) {
  check(height >= 1 && width >= 1 && channels >= 1, "augment: image shape ", height, "x", width, "x", channels,
        " is empty; check the shards' height/width/channels attributes");
  check_option(options.crop_size >= 1 && options.crop_size <= height && options.crop_size <= width, "crop_size",
               "crop size ", options.crop_size, " does not fit the ", height, "x", width,
               " images of the split; use a crop size between 1 and ", std::min(height, width),
               " or prepare the data at a larger size (dml_prepare --resize)");
  check(options.out_channels == channels || (channels == 1 && options.out_channels == 3), "augment: images have ",
        channels, " channel(s) but the model needs ", options.out_channels,
        "; only 1 -> 3 (tiling gray) is converted; prepare the data with the channels the model expects");
}

CropPlan plan_crop(int64_t height, int64_t width, const AugmentOptions& options, uint64_t seed, uint64_t step,
                   uint64_t global_index) {
  CropPlan plan;
  if (!options.train) {
    plan.y0 = (height - options.crop_size) / 2;
    plan.x0 = (width - options.crop_size) / 2;
    return plan;
  }
  const RngKey key{seed, RngStream::kAugment, step};
  plan.flip = random_uniform(key, global_index, /*draw=*/0) < 0.5;
  plan.y0 = random_below(key, global_index, /*draw=*/1, static_cast<uint32_t>(height - options.crop_size + 1));
  plan.x0 = random_below(key, global_index, /*draw=*/2, static_cast<uint32_t>(width - options.crop_size + 1));
  return plan;
}

void augment_image(const uint8_t* hwc, int64_t height, int64_t width, int64_t channels,
                   const AugmentOptions& options, uint64_t seed, uint64_t step, uint64_t global_index,
                   uint8_t* chw_out) {
  validate_augment(height, width, channels, options);
  const CropPlan plan = plan_crop(height, width, options, seed, step, global_index);
  const int64_t crop = options.crop_size;
  const int64_t plane = crop * crop;
  for (int64_t y = 0; y < crop; ++y) {
    const uint8_t* src_row = hwc + (plan.y0 + y) * width * channels;
    for (int64_t x = 0; x < crop; ++x) {
      // Flipping the whole image and then cropping at x0 reads source column W-1-(x0+x).
      const int64_t src_x = plan.flip ? width - 1 - (plan.x0 + x) : plan.x0 + x;
      const uint8_t* pixel = src_row + src_x * channels;
      for (int64_t c = 0; c < options.out_channels; ++c) {
        chw_out[c * plane + y * crop + x] = pixel[channels == 1 ? 0 : c];
      }
    }
  }
}

}  // namespace dml
