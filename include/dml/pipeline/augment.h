#pragma once
// Per-image augmentation (reference semantics 2.2): train = horizontal flip with p = 0.5, then a random
// crop; test = center crop. HWC uint8 in, CHW uint8 out.
#include <cstdint>

namespace dml {

struct AugmentOptions {
  int64_t crop_size = 224;   // square crop; must be <= image height and width (error naming --crop-size)
  bool train = true;         // train: flip p=0.5 + random crop offsets uniform in 0..H-crop (inclusive);
                             // test: center crop at offset (H-crop)/2, (W-crop)/2, no flip
  int64_t out_channels = 3;  // 1-channel images are tiled to 3 when the model needs 3
};

// The random choices of one training sample, all from RngKey{seed, kAugment, step}, index global_index:
// draw 0: flip when random_uniform < 0.5; draw 1: y0 = random_below(H - crop + 1);
// draw 2: x0 = random_below(W - crop + 1). Test mode: no flip, centre offsets.
struct CropPlan {
  bool flip = false;
  int64_t y0 = 0, x0 = 0;
};
CropPlan plan_crop(int64_t height, int64_t width, const AugmentOptions& options, uint64_t seed, uint64_t step,
                   uint64_t global_index);

// Throws dml::Error unless the options fit images of this shape: 1 <= crop_size <= min(height, width),
// out_channels == channels, or channels == 1 and out_channels == 3 (tiled).
void validate_augment(int64_t height, int64_t width, int64_t channels, const AugmentOptions& options);

// Applies flip/crop/tiling to one HWC image into chw_out [out_channels, crop, crop]:
// out[c][y][x] = hwc[y0 + y][flip ? W-1-(x0+x) : x0+x][channels == 1 ? 0 : c]
// (the flip is of the whole image, before the crop, as in the reference). Randomness keyed by
// (seed, kAugment, step, global sample index), so identical whatever the replica split.
void augment_image(const uint8_t* hwc, int64_t height, int64_t width, int64_t channels,
                   const AugmentOptions& options, uint64_t seed, uint64_t step, uint64_t global_index,
                   uint8_t* chw_out);

}  // namespace dml
