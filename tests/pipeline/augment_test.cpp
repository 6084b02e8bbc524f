#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "dml/pipeline/augment.h"
#include "dml/util/error.h"

namespace dml {
namespace {

// A pattern image whose pixels encode their coordinates: channel 0 = y*16 + x, channel 1 = x*16 + y,
// channel 2 = 255 - (y*16 + x) (H, W <= 16).
std::vector<uint8_t> pattern_image(int64_t h, int64_t w) {
  std::vector<uint8_t> img(h * w * 3);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      img[(y * w + x) * 3 + 0] = static_cast<uint8_t>(y * 16 + x);
      img[(y * w + x) * 3 + 1] = static_cast<uint8_t>(x * 16 + y);
      img[(y * w + x) * 3 + 2] = static_cast<uint8_t>(255 - (y * 16 + x));
    }
  }
  return img;
}

// The crop of the pattern image written by hand: rows y0.., columns x0.. of the (possibly flipped) image.
std::vector<uint8_t> expected_crop(int64_t w, int64_t crop, int64_t y0, int64_t x0, bool flip) {
  std::vector<uint8_t> out(3 * crop * crop);
  for (int64_t y = 0; y < crop; ++y) {
    for (int64_t x = 0; x < crop; ++x) {
      const int64_t sy = y0 + y;
      const int64_t sx = flip ? (w - 1) - (x0 + x) : x0 + x;  // flipped image column x0+x
      out[0 * crop * crop + y * crop + x] = static_cast<uint8_t>(sy * 16 + sx);
      out[1 * crop * crop + y * crop + x] = static_cast<uint8_t>(sx * 16 + sy);
      out[2 * crop * crop + y * crop + x] = static_cast<uint8_t>(255 - (sy * 16 + sx));
    }
  }
  return out;
}

TEST(Augment, TrainCropAndFlipMatchHandComputedCrop) {
  const int64_t h = 10, w = 13, crop = 7;
  const auto img = pattern_image(h, w);
  AugmentOptions options{crop, /*train=*/true, 3};
  std::set<std::pair<int64_t, int64_t>> offsets_seen;
  int flips = 0;
  for (uint64_t index = 0; index < 400; ++index) {
    std::vector<uint8_t> out(3 * crop * crop, 0);
    augment_image(img.data(), h, w, 3, options, /*seed=*/11, /*step=*/4, index, out.data());
    // Recover the crop from the output pixels: the top-left pixel is source (y0, x0) or, flipped, (y0, W-1-x0);
    // its right neighbour tells the direction.
    const int64_t sy = out[0] / 16, sx = out[0] % 16;
    const bool flip = crop > 1 && (out[1] % 16) < sx;
    const int64_t y0 = sy, x0 = flip ? (w - 1) - sx : sx;
    ASSERT_GE(y0, 0);
    ASSERT_LE(y0, h - crop);
    ASSERT_GE(x0, 0);
    ASSERT_LE(x0, w - crop);
    ASSERT_EQ(out, expected_crop(w, crop, y0, x0, flip)) << "index " << index;
    const CropPlan plan = plan_crop(h, w, options, 11, 4, index);
    EXPECT_EQ(plan.flip, flip);
    EXPECT_EQ(plan.y0, y0);
    EXPECT_EQ(plan.x0, x0);
    offsets_seen.insert({y0, x0});
    flips += flip;
  }
  // Offsets are inclusive of both ends: all (h-crop+1) x (w-crop+1) = 4 x 7 = 28 offsets appear in 400 draws.
  EXPECT_EQ(offsets_seen.size(), 28u);
  EXPECT_GT(flips, 120);  // binomial(400, 0.5): sd 10
  EXPECT_LT(flips, 280);
}

TEST(Augment, FlipFrequencyAndOffsetsAreUniform) {
  const int64_t h = 256, w = 256;
  AugmentOptions options{224, true, 3};
  const int n = 20000;
  int flips = 0;
  std::vector<int64_t> y_counts(33, 0), x_counts(33, 0);
  for (int i = 0; i < n; ++i) {
    const CropPlan plan = plan_crop(h, w, options, 123, 9, static_cast<uint64_t>(i));
    flips += plan.flip;
    ASSERT_TRUE(plan.y0 >= 0 && plan.y0 <= 32 && plan.x0 >= 0 && plan.x0 <= 32);
    y_counts[plan.y0]++;
    x_counts[plan.x0]++;
  }
  EXPECT_NEAR(flips, n / 2, 5 * std::sqrt(n / 4.0));
  // Chi-square, 32 degrees of freedom; the p ~ 1e-6 quantile is about 76.
  for (const auto* counts : {&y_counts, &x_counts}) {
    double chi = 0, expected = n / 33.0;
    for (int64_t c : *counts) chi += (c - expected) * (c - expected) / expected;
    EXPECT_LT(chi, 76.0);
  }
}

TEST(Augment, CenterCropOffset16For256To224) {
  const int64_t size = 256, crop = 224;
  std::vector<uint8_t> img(size * size * 3);
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t x = 0; x < size; ++x) {
      img[(y * size + x) * 3 + 0] = static_cast<uint8_t>(y);
      img[(y * size + x) * 3 + 1] = static_cast<uint8_t>(x);
      img[(y * size + x) * 3 + 2] = static_cast<uint8_t>((x + y) & 255);
    }
  }
  std::vector<uint8_t> out(3 * crop * crop);
  for (uint64_t index : {0, 1, 2, 3, 4}) {
    augment_image(img.data(), size, size, 3, AugmentOptions{crop, /*train=*/false, 3}, 1, 2, index, out.data());
    for (int64_t y = 0; y < crop; ++y) {
      for (int64_t x = 0; x < crop; ++x) {
        ASSERT_EQ(out[0 * crop * crop + y * crop + x], y + 16);
        ASSERT_EQ(out[1 * crop * crop + y * crop + x], x + 16);
        ASSERT_EQ(out[2 * crop * crop + y * crop + x], (x + y + 32) & 255);
      }
    }
  }
  // Odd margins round down, as int((H - crop) / 2): 13 wide, crop 10 -> offset 1.
  const CropPlan plan = plan_crop(12, 13, AugmentOptions{10, false, 3}, 0, 0, 0);
  EXPECT_EQ(plan.y0, 1);
  EXPECT_EQ(plan.x0, 1);
  EXPECT_FALSE(plan.flip);
}

TEST(Augment, SameSeedStepIndexGiveSameOutputAndOthersDiffer) {
  const auto img = pattern_image(16, 16);
  AugmentOptions options{8, true, 3};
  std::vector<uint8_t> a(3 * 64), b(3 * 64);
  int differ = 0;
  for (uint64_t index = 0; index < 50; ++index) {
    augment_image(img.data(), 16, 16, 3, options, 5, 6, index, a.data());
    augment_image(img.data(), 16, 16, 3, options, 5, 6, index, b.data());
    ASSERT_EQ(a, b);
    augment_image(img.data(), 16, 16, 3, options, 5, 7, index, b.data());
    differ += a != b;
  }
  EXPECT_GT(differ, 40);  // 2*9*9 = 162 plans, a collision has probability 1/162
}

TEST(Augment, GrayIsTiledToThreeChannels) {
  const int64_t h = 9, w = 11, crop = 5;
  std::vector<uint8_t> gray(h * w);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) gray[y * w + x] = static_cast<uint8_t>(y * 16 + x);
  }
  std::vector<uint8_t> out(3 * crop * crop);
  augment_image(gray.data(), h, w, 1, AugmentOptions{crop, false, 3}, 0, 0, 0, out.data());
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t y = 0; y < crop; ++y) {
      for (int64_t x = 0; x < crop; ++x) {
        ASSERT_EQ(out[c * crop * crop + y * crop + x], (y + 2) * 16 + (x + 3)) << c << " " << y << " " << x;
      }
    }
  }
  // Gray kept gray when the model takes one channel.
  std::vector<uint8_t> one(crop * crop);
  augment_image(gray.data(), h, w, 1, AugmentOptions{crop, false, 1}, 0, 0, 0, one.data());
  EXPECT_TRUE(std::equal(one.begin(), one.end(), out.begin()));
}

TEST(Augment, BadCropSizeOrChannelsNameTheFix) {
  const auto img = pattern_image(10, 12);
  std::vector<uint8_t> out(3 * 16 * 16);
  try {
    augment_image(img.data(), 10, 12, 3, AugmentOptions{11, true, 3}, 0, 0, 0, out.data());
    FAIL() << "no error for a crop larger than the image";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("crop size 11 does not fit"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("10x12"), std::string::npos) << e.what();
  }
  EXPECT_THROW(validate_augment(10, 12, 3, AugmentOptions{0, true, 3}), Error);
  EXPECT_THROW(validate_augment(10, 12, 3, AugmentOptions{8, true, 1}), Error);
  EXPECT_THROW(validate_augment(10, 12, 2, AugmentOptions{8, true, 3}), Error);
  EXPECT_NO_THROW(validate_augment(10, 12, 1, AugmentOptions{10, true, 3}));
}

}  // namespace
}  // namespace dml
