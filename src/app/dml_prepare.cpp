// dml_prepare: turns CUB-200-2011, an image folder or Fashion-MNIST into format-v1 HDF5 shards.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "dml/data/prepare.h"
#include "dml/data/sources.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace po = boost::program_options;

namespace {
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int run(int argc, char** argv) {
  std::string source, input, output, train_classes, test_classes;
  int shards = 1, threads = 0;
  int64_t resize = -1;
  po::options_description flags("dml_prepare: write HDF5 shards (format v1) for training and evaluation");
  flags.add_options()
      ("help,h", "show this help")
      ("source", po::value(&source)->required(), "cub | folder | fashion-mnist")
      ("input", po::value(&input), "source directory (CUB_200_2011 root, class folders, or the IDX files; "
                                   "fashion-mnist default /usr/share/datasets/fashion-mnist)")
      ("output", po::value(&output)->required(), "directory that receives <split>-NNNNN-of-MMMMM.h5")
      ("shards", po::value(&shards)->default_value(1), "shards per split (classes round-robin over shards)")
      ("resize", po::value(&resize), "resize images to N x N, 0 = keep (default 256 for cub/folder, 0 for fashion-mnist)")
      ("no-bbox-crop", "cub: do not crop to the bounding boxes (the uncropped protocol)")
      ("class-split", "fashion-mnist: classes 0-4 train, 5-9 test (train+test files pooled)")
      ("train-classes", po::value(&train_classes), "folder: comma-separated class folder names of the train split")
      ("test-classes", po::value(&test_classes), "folder: comma-separated class folder names of the test split")
      ("threads", po::value(&threads)->default_value(0), "decoding threads, 0 = hardware concurrency")
      ("overwrite", "replace shards already in --output");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, flags), vm);
    if (vm.count("help")) {
      std::cout << flags << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw dml::Error(dml::str("command line: ", e.what(), "; see dml_prepare --help"));
  }

  const auto start = std::chrono::steady_clock::now();
  std::vector<dml::SplitPlan> plans;
  if (source == "cub") {
    dml::check(!input.empty(), "--input is required for --source cub (the extracted CUB_200_2011 folder)");
    plans = dml::plan_cub({input, resize >= 0 ? resize : 256, vm.count("no-bbox-crop") == 0});
  } else if (source == "folder") {
    dml::check(!input.empty(), "--input is required for --source folder (one sub-folder per class)");
    plans = dml::plan_image_folder({input, resize >= 0 ? resize : 256, split_list(train_classes),
                                    split_list(test_classes)});
  } else if (source == "fashion-mnist") {
    dml::FashionMnistOptions options;
    if (!input.empty()) options.dir = input;
    options.class_split = vm.count("class-split") > 0;
    options.resize = resize >= 0 ? resize : 0;
    plans = dml::plan_fashion_mnist(options);
  } else {
    throw dml::Error(dml::str("--source '", source, "' is unknown; use cub, folder or fashion-mnist"));
  }
  dml::check(source == "cub" || vm.count("no-bbox-crop") == 0, "--no-bbox-crop applies to --source cub only");
  dml::check(source == "fashion-mnist" || vm.count("class-split") == 0,
             "--class-split applies to --source fashion-mnist only (cub and folder always split by class)");
  dml::check(source == "folder" || (train_classes.empty() && test_classes.empty()),
             "--train-classes/--test-classes apply to --source folder only");

  dml::PrepareOptions options;
  options.output_dir = output;
  options.shards = shards;
  options.threads = threads;
  options.overwrite = vm.count("overwrite") > 0;
  const double plan_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const dml::PrepareSummary s = dml::prepare_splits(plans, options);
  // Seconds and images/s cover everything: reading the source index and decoding/writing.
  const double seconds = plan_seconds + s.seconds;
  char timing[128];
  std::snprintf(timing, sizeof(timing), "%.2f s (%.2f s reading the source), %.0f images/s", seconds, plan_seconds,
                seconds > 0 ? s.images / seconds : 0.0);
  dml::log::info("prepare", dml::str("done: ", s.images, " images, ", s.classes, " classes, ", s.shards, " shards, ",
                                     s.bytes, " bytes in ", output, ", ", timing));
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    dml::log::error("prepare", e.what());
    return 1;
  }
}
