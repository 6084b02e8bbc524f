#include "dml/train/shard_image_source.h"

#include <filesystem>

#include "dml/util/error.h"

namespace fs = std::filesystem;

namespace dml {

ImageSource make_image_source(const ShardSet& shards) {
  ImageSource source;
  source.height = shards.info().height;
  source.width = shards.info().width;
  source.channels = shards.info().channels;
  source.labels = shards.labels();
  source.num_classes = shards.info().num_classes;
  source.read = [shards](int64_t row, uint8_t* dst) { shards.read_image(row, dst); };
  return source;
}

void check_data_path(const std::string& data_path) {
  check_option(fs::is_directory(data_path), "data_path", "data path ", data_path,
        ": no such directory; prepare shards first (launch/prepare_fashion_mnist.sh, launch/prepare_cub.sh) "
        "and pass their output directory");
  if (fs::exists(fs::path(data_path) / "images.txt") && fs::exists(fs::path(data_path) / "bounding_boxes.txt")) {
    throw OptionError("data_path", str("data path ", data_path, " is a raw CUB-200-2011 directory; convert it to shards once with\n"
                    "  dml_prepare --source cub --input ", data_path, " --output ", data_path, "-shards\n"
                    "(or launch/prepare_cub.sh) and then train on ", data_path, "-shards"));
  }
  if (fs::exists(fs::path(data_path) / "train-images-idx3-ubyte.gz")) {
    throw OptionError("data_path", str("data path ", data_path, " holds Fashion-MNIST IDX files; convert them once with\n"
                    "  dml_prepare --source fashion-mnist --input ", data_path, " --output data/fashion-mnist\n"
                    "(or launch/prepare_fashion_mnist.sh) and then train on data/fashion-mnist"));
  }
}

}  // namespace dml
