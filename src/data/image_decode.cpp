#include "data/image_decode.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "dml/util/error.h"

namespace dml::image {
namespace {

std::vector<uint8_t> read_file(const std::string& path, const std::string& context) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), context, ": cannot read image ", path, "; check that it exists and is readable");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(!bytes.empty(), context, ": image ", path, " is empty; replace it with the original file");
  return bytes;
}

// libjpeg decodes a truncated JPEG with only a warning (grey bottom rows), so check for the
// end-of-image marker FF D9 near the end of the file ourselves (trailing bytes are tolerated).
bool jpeg_looks_complete(const std::vector<uint8_t>& bytes) {
  if (bytes.size() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8) return true;  // not a JPEG
  const size_t begin = bytes.size() > 4096 + 2 ? bytes.size() - 4096 - 1 : 2;
  for (size_t i = begin; i + 1 < bytes.size(); ++i) {
    if (bytes[i] == 0xFF && bytes[i + 1] == 0xD9) return true;
  }
  return false;
}

cv::Mat decode_cropped(const std::string& path, const std::optional<PixelBox>& box, const std::string& context) {
  const std::vector<uint8_t> bytes = read_file(path, context);
  check(jpeg_looks_complete(bytes), context, ": image ", path,
        " is truncated (JPEG without end-of-image marker); replace it with the original file");
  cv::Mat bgr = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<uint8_t*>(bytes.data())),
                             cv::IMREAD_COLOR);
  check(!bgr.empty(), context, ": cannot decode image ", path,
        " (unreadable, truncated or not an image); replace it with the original file");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  if (!box) return rgb;
  const int64_t height = rgb.rows, width = rgb.cols;
  const bool inside = box->x >= 0 && box->y >= 0 && box->w > 0 && box->h > 0 && box->x < width && box->y < height;
  check(inside, context, ": bounding box x=", box->x, " y=", box->y, " w=", box->w, " h=", box->h,
        " lies outside image ", path, " (", width, "x", height,
        "); fix the box in bounding_boxes.txt or pass --no-bbox-crop");
  const int64_t y_end = std::min(box->y + box->h, height), x_end = std::min(box->x + box->w, width);
  return rgb(cv::Range(static_cast<int>(box->y), static_cast<int>(y_end)),
             cv::Range(static_cast<int>(box->x), static_cast<int>(x_end)));
}

}  // namespace

void decode_rgb(const std::string& path, const std::optional<PixelBox>& box, int64_t resize, int64_t out_height,
                int64_t out_width, uint8_t* dst, const std::string& context) {
  cv::Mat image = decode_cropped(path, box, context);
  if (resize > 0) {
    cv::Mat resized;
    cv::resize(image, resized, cv::Size(static_cast<int>(resize), static_cast<int>(resize)), 0, 0, cv::INTER_LINEAR);
    image = resized;
  }
  check(image.rows == out_height && image.cols == out_width, context, ": image ", path, " is ", image.cols, "x",
        image.rows, " after cropping but the split's images are ", out_width, "x", out_height,
        "; pass --resize N so that all images get one size");
  if (!image.isContinuous()) image = image.clone();
  std::memcpy(dst, image.data, static_cast<size_t>(out_height * out_width * 3));
}

std::pair<int64_t, int64_t> decoded_size(const std::string& path, const std::optional<PixelBox>& box, int64_t resize,
                                         const std::string& context) {
  if (resize > 0) return {resize, resize};
  cv::Mat image = decode_cropped(path, box, context);
  return {image.rows, image.cols};
}

void resize_hwc(const uint8_t* src, int64_t height, int64_t width, int64_t channels, int64_t out_height,
                int64_t out_width, uint8_t* dst) {
  const int type = CV_8UC(static_cast<int>(channels));
  cv::Mat in(static_cast<int>(height), static_cast<int>(width), type, const_cast<uint8_t*>(src));
  cv::Mat out(static_cast<int>(out_height), static_cast<int>(out_width), type, dst);
  cv::resize(in, out, out.size(), 0, 0, cv::INTER_LINEAR);
  check(out.data == dst, "resize_hwc: OpenCV reallocated the output");
}

}  // namespace dml::image
