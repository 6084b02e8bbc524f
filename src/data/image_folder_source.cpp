// A generic class-labelled image folder: <root>/<class>/<image>, split by classes.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "data/image_decode.h"
#include "dml/data/sources.h"
#include "dml/util/error.h"

namespace dml {
namespace fs = std::filesystem;

namespace {
bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> known = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"};
  return known.count(ext) == 1;
}

struct FolderImage {
  std::string path;
  int64_t id = 0;
};
}  // namespace

std::vector<SplitPlan> plan_image_folder(const ImageFolderOptions& options) {
  const std::string& root = options.root;
  check(fs::is_directory(root), "image folder ", root, " does not exist; pass --input <folder with one sub-folder per class>");
  std::vector<std::string> classes;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') classes.push_back(name);
  }
  std::sort(classes.begin(), classes.end());
  check(classes.size() >= 2, "image folder ", root, " has ", classes.size(),
        " class sub-folders; it needs at least 2 (one per class, images inside)");

  // Images of every class, sorted; ids number them in sorted (class, file) order.
  std::map<std::string, std::vector<FolderImage>> images_of;
  int64_t next_id = 0;
  for (const auto& name : classes) {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(fs::path(root) / name)) {
      if (entry.is_regular_file() && is_image_file(entry.path())) files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    check(!files.empty(), "image folder ", root, ": class folder ", name,
          " holds no images (.jpg .jpeg .png .bmp .ppm .pgm .tif .tiff .webp); an empty class cannot be sampled, ",
          "remove the folder or add images");
    for (auto& file : files) images_of[name].push_back({std::move(file), next_id++});
  }

  std::vector<std::string> train = options.train_classes, test = options.test_classes;
  check(train.empty() == test.empty(), "image folder ", root,
        ": give both --train-classes and --test-classes, or neither (then the first half of the sorted classes trains)");
  if (train.empty()) {
    const size_t half = (classes.size() + 1) / 2;
    train.assign(classes.begin(), classes.begin() + half);
    test.assign(classes.begin() + half, classes.end());
  }
  std::set<std::string> used;
  for (const auto* list : {&train, &test}) {
    const char* flag = list == &train ? "--train-classes" : "--test-classes";
    for (const auto& name : *list) {
      check(images_of.count(name) == 1, flag, ": class '", name, "' is not a sub-folder of ", root,
            "; use the sub-folder names");
      check(used.insert(name).second, flag, ": class '", name, "' is listed twice (a class belongs to one split)");
    }
  }

  std::vector<SplitPlan> plans;
  for (const auto& [split, names] : {std::pair<const char*, const std::vector<std::string>*>{"train", &train},
                                     std::pair<const char*, const std::vector<std::string>*>{"test", &test}}) {
    SplitPlan plan;
    plan.info.dataset = fs::path(root).lexically_normal().filename().string();
    if (plan.info.dataset.empty()) plan.info.dataset = fs::path(root).lexically_normal().parent_path().filename().string();
    plan.info.split = split;
    plan.info.num_classes = static_cast<int64_t>(names->size());
    plan.info.channels = 3;
    plan.info.class_names = *names;
    plan.info.resize = options.resize;
    auto paths = std::make_shared<std::vector<std::string>>();
    for (size_t label = 0; label < names->size(); ++label) {
      for (const auto& image : images_of[(*names)[label]]) {
        paths->push_back(image.path);
        plan.labels.push_back(static_cast<int64_t>(label));
        plan.ids.push_back(image.id);
      }
    }
    const auto [height, width] = image::decoded_size(paths->front(), std::nullopt, options.resize, "image folder");
    plan.info.height = height;
    plan.info.width = width;
    plan.decode = [paths, resize = options.resize, height = height, width = width](int64_t i, uint8_t* dst) {
      image::decode_rgb((*paths)[i], std::nullopt, resize, height, width, dst, "image folder");
    };
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace dml
