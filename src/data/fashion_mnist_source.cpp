// Fashion-MNIST from Debian's gzipped IDX files (package dataset-fashion-mnist): the built-in data
// set, so the demo runs on any fresh machine without downloads.
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "data/image_decode.h"
#include "dml/data/sources.h"
#include "dml/util/error.h"

namespace dml {
namespace fs = std::filesystem;

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

namespace {
const char* kFix = "; reinstall Debian's dataset-fashion-mnist package or point --input at intact IDX files";

// One IDX file: dims and payload (uint8 data only, which is all Fashion-MNIST uses).
struct Idx {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

Idx read_idx(const std::string& path, int expected_rank) {
  check(fs::is_regular_file(path), "Fashion-MNIST file ", path, " not found", kFix);
  gzFile file = gzopen(path.c_str(), "rb");
  check(file != nullptr, "cannot open Fashion-MNIST file ", path, kFix);
  std::unique_ptr<gzFile_s, int (*)(gzFile)> closer(file, gzclose);
  auto read_exact = [&](void* dst, size_t bytes, const char* what) {
    size_t done = 0;
    while (done < bytes) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(bytes - done, 1u << 30));
      const int got = gzread(file, static_cast<char*>(dst) + done, chunk);
      check(got > 0, path, ": truncated or corrupt while reading ", what, " (", done, " of ", bytes, " bytes)", kFix);
      done += static_cast<size_t>(got);
    }
  };
  uint8_t magic[4];
  read_exact(magic, 4, "the magic number");
  check(magic[0] == 0 && magic[1] == 0 && magic[2] == 0x08 && magic[3] == expected_rank, path,
        ": bad IDX magic (expected 0x0000080", expected_rank, ", uint8 data of rank ", expected_rank, ")", kFix);
  Idx idx;
  int64_t total = 1;
  for (int d = 0; d < expected_rank; ++d) {
    uint8_t be[4];
    read_exact(be, 4, "the dimensions");
    idx.dims.push_back((int64_t{be[0]} << 24) | (int64_t{be[1]} << 16) | (int64_t{be[2]} << 8) | be[3]);
    total *= idx.dims.back();
  }
  idx.data.resize(static_cast<size_t>(total));
  read_exact(idx.data.data(), idx.data.size(), "the data");
  return idx;
}

struct FashionPart {
  Idx images, labels;
};

FashionPart read_part(const std::string& dir, const std::string& prefix) {
  FashionPart part;
  const std::string image_path = (fs::path(dir) / (prefix + "-images-idx3-ubyte.gz")).string();
  const std::string label_path = (fs::path(dir) / (prefix + "-labels-idx1-ubyte.gz")).string();
  part.images = read_idx(image_path, 3);
  part.labels = read_idx(label_path, 1);
  check(part.images.dims[0] == part.labels.dims[0], image_path, " holds ", part.images.dims[0], " images but ",
        label_path, " holds ", part.labels.dims[0], " labels", kFix);
  check(part.images.dims[1] == 28 && part.images.dims[2] == 28, image_path, ": images are ", part.images.dims[1], "x",
        part.images.dims[2], ", Fashion-MNIST's are 28x28", kFix);
  for (size_t i = 0; i < part.labels.data.size(); ++i) {
    check(part.labels.data[i] < 10, label_path, ": label ", int{part.labels.data[i]}, " of item ", i,
          " is outside 0..9", kFix);
  }
  return part;
}
}  // namespace

std::vector<SplitPlan> plan_fashion_mnist(const FashionMnistOptions& options) {
  check(options.resize >= 0, "--resize ", options.resize, " must be >= 0");
  auto train = std::make_shared<FashionPart>(read_part(options.dir, "train"));
  auto test = std::make_shared<FashionPart>(read_part(options.dir, "t10k"));
  const int64_t train_count = train->labels.dims[0];
  const int64_t side = options.resize > 0 ? options.resize : 28;

  // Source of global id g: train item g, or test item g - train_count.
  std::vector<SplitPlan> plans;
  for (const char* split : {"train", "test"}) {
    const bool is_train = std::string(split) == "train";
    SplitPlan plan;
    plan.info.dataset = "fashion_mnist";
    plan.info.split = split;
    plan.info.height = side;
    plan.info.width = side;
    plan.info.channels = 1;
    plan.info.resize = options.resize;
    const auto& names = fashion_mnist_class_names();
    const int first_class = options.class_split ? (is_train ? 0 : 5) : 0;
    const int class_count = options.class_split ? 5 : 10;
    plan.info.num_classes = class_count;
    plan.info.class_names.assign(names.begin() + first_class, names.begin() + first_class + class_count);
    for (const auto* part : {train.get(), test.get()}) {
      const bool part_is_train = part == train.get();
      if (!options.class_split && part_is_train != is_train) continue;
      const int64_t base = part_is_train ? 0 : train_count;
      for (size_t i = 0; i < part->labels.data.size(); ++i) {
        const int label = part->labels.data[i];
        if (label < first_class || label >= first_class + class_count) continue;
        plan.labels.push_back(label - first_class);
        plan.ids.push_back(base + static_cast<int64_t>(i));
      }
    }
    auto ids = std::make_shared<std::vector<int64_t>>(plan.ids);
    plan.decode = [train, test, ids, train_count, side](int64_t i, uint8_t* dst) {
      const int64_t id = (*ids)[i];
      const FashionPart& part = id < train_count ? *train : *test;
      const uint8_t* src = part.images.data.data() + (id < train_count ? id : id - train_count) * 28 * 28;
      if (side == 28) {
        std::memcpy(dst, src, 28 * 28);
      } else {
        image::resize_hwc(src, 28, 28, 1, side, side, dst);
      }
    };
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace dml
