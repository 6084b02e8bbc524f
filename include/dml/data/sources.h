#pragma once
// Data sources for the prepare tool. Each planner reads and checks the source's index (text
// files, folder listing, IDX headers) eagerly and returns one SplitPlan per split ("train",
// "test"); images are decoded later by SplitPlan::decode. Every problem is a dml::Error naming
// the file and line or field, and the fix.
#include <cstdint>
#include <string>
#include <vector>

#include "dml/data/prepare.h"

namespace dml {

// CUB-200-2011 (the reference protocol). `root` holds images.txt, image_class_labels.txt,
// bounding_boxes.txt (read in lockstep; ids must line up) and images/. Classes 1-100 form
// "train", 101-200 "test"; each split's classes (those with images; all those listed in
// classes.txt when it exists) are re-indexed 0..n-1 in ascending order and class_names keep the
// original names (classes.txt) or numbers. ids are the CUB image ids. Images decode as RGB
// (grayscale too), are cropped to rows y:min(y+h,H), cols x:min(x+w,W) of their box when
// bbox_crop (box values parsed as float and truncated), then resized to resize x resize
// (cv::INTER_LINEAR, aspect ignored). resize 0 keeps sizes, which must then all agree.
struct CubOptions {
  std::string root;
  int64_t resize = 256;
  bool bbox_crop = true;
};
std::vector<SplitPlan> plan_cub(const CubOptions& options);

// A folder with one sub-folder per class (sorted by name), images inside (.jpg .jpeg .png .bmp
// .ppm .pgm .tif .tiff .webp, sorted by name). Split by classes: the first ceil(n/2) classes are
// "train", the rest "test", unless train_classes and test_classes (sub-folder names) are both
// given. Labels follow the sorted order (or list order); ids number all images 0.. in sorted
// (class, file) order. Decoding and resize as for CUB, without boxes.
struct ImageFolderOptions {
  std::string root;
  int64_t resize = 256;
  std::vector<std::string> train_classes, test_classes;
};
std::vector<SplitPlan> plan_image_folder(const ImageFolderOptions& options);

// Fashion-MNIST from the gzipped IDX files in `dir` (train-*, t10k-*). Without class_split the
// official files are the splits (60000 train, 10000 test) with labels 0..9; with class_split both
// files are pooled and classes 0-4 form "train", 5-9 "test" (labels re-indexed 0..4). ids: index in
// the train file, or 60000 + index in the test file. 28x28x1; resize > 0 resizes (INTER_LINEAR).
struct FashionMnistOptions {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  bool class_split = false;
  int64_t resize = 0;
};
std::vector<SplitPlan> plan_fashion_mnist(const FashionMnistOptions& options);

// Fashion-MNIST class names, indexed by the official label 0..9.
const std::vector<std::string>& fashion_mnist_class_names();

}  // namespace dml
