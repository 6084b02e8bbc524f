#pragma once
// Private: decoding source images for the prepare tool (OpenCV).
#include <cstdint>
#include <optional>
#include <string>

namespace dml::image {

// A bounding box in pixels (x, y = top-left column/row; w, h = size), already truncated to ints.
struct PixelBox {
  int64_t x = 0, y = 0, w = 0, h = 0;
};

// Decodes `path` as 3-channel RGB (grayscale replicated), crops to `box` (rows y:min(y+h,H),
// cols x:min(x+w,W)) when given, resizes to resize x resize (INTER_LINEAR) when resize > 0, and
// writes out_height*out_width*3 bytes HWC to dst. Throws dml::Error naming `path` (and `context`,
// e.g. "images.txt line 12") for unreadable or truncated files, boxes outside the image, and a
// result whose size is not out_height x out_width.
void decode_rgb(const std::string& path, const std::optional<PixelBox>& box, int64_t resize, int64_t out_height,
                int64_t out_width, uint8_t* dst, const std::string& context);

// Height and width decode_rgb would produce with out_* unknown (decodes the image once).
std::pair<int64_t, int64_t> decoded_size(const std::string& path, const std::optional<PixelBox>& box, int64_t resize,
                                         const std::string& context);

// Resizes a single-channel or multi-channel HWC uint8 image (INTER_LINEAR) into dst.
void resize_hwc(const uint8_t* src, int64_t height, int64_t width, int64_t channels, int64_t out_height,
                int64_t out_width, uint8_t* dst);

}  // namespace dml::image
