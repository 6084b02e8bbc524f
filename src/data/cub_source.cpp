// CUB-200-2011 in the reference protocol: the three index files read in lockstep, classes
// 1-100 -> train and 101-200 -> test (train_test_split.txt unused), bounding-box crop and 256x256
// resize ignoring aspect, as the reference MXNet Gluon example (example/gluon/embedding_learning).
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "data/image_decode.h"
#include "dml/data/sources.h"
#include "dml/util/error.h"

namespace dml {
namespace fs = std::filesystem;

namespace {
const char* kReextract = "; re-extract CUB_200_2011.tgz or fix the line";

struct Line {
  int number = 0;  // 1-based line number in its file
  std::vector<std::string> fields;
  std::string text;
};

// Non-blank lines of `name` under root, split on whitespace.
std::vector<Line> read_lines(const std::string& root, const std::string& name) {
  const fs::path path = fs::path(root) / name;
  std::ifstream in(path);
  check(in.good(), "CUB directory ", root, ": ", name, " not found; --input must be the extracted CUB_200_2011 ",
        "folder (with images.txt, image_class_labels.txt, bounding_boxes.txt and images/)");
  std::vector<Line> lines;
  std::string text;
  int number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    std::istringstream words(text);
    Line line{number, {}, text};
    for (std::string w; words >> w;) line.fields.push_back(w);
    if (!line.fields.empty()) lines.push_back(std::move(line));
  }
  return lines;
}

int64_t parse_int(const std::string& text, const std::string& file, const Line& line, const char* field) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == text.size() && used > 0, file, " line ", line.number, ": ", field, " '", text,
        "' is not an integer (line: '", line.text, "')", kReextract);
  return value;
}

// The reference parses box values as float and truncates them to int.
int64_t parse_box_value(const std::string& text, const std::string& file, const Line& line, const char* field) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == text.size() && used > 0, file, " line ", line.number, ": ", field, " '", text,
        "' is not a number (line: '", line.text, "')", kReextract);
  return static_cast<int64_t>(value);
}

// The rest of a line after its first field, trimmed (a relative path may contain spaces).
std::string after_first_field(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  begin = text.find_first_not_of(" \t", text.find_first_of(" \t", begin));
  const size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

struct CubImage {
  int64_t id = 0, cub_class = 0;
  std::string path;
  image::PixelBox box;
  int line = 0;  // line in images.txt
};
}  // namespace

std::vector<SplitPlan> plan_cub(const CubOptions& options) {
  const std::string& root = options.root;
  check(fs::is_directory(root), "CUB directory ", root, " does not exist; pass --input <path to CUB_200_2011>");
  const auto images = read_lines(root, "images.txt");
  const auto labels = read_lines(root, "image_class_labels.txt");
  const auto boxes = read_lines(root, "bounding_boxes.txt");
  check(images.size() == labels.size() && images.size() == boxes.size(), "CUB directory ", root,
        ": images.txt lists ", images.size(), " images, image_class_labels.txt ", labels.size(),
        ", bounding_boxes.txt ", boxes.size(), "; the three files must list the same images in the same order",
        kReextract);
  check(!images.empty(), "CUB directory ", root, ": images.txt lists no images", kReextract);

  std::vector<CubImage> all;
  for (size_t k = 0; k < images.size(); ++k) {
    const Line& a = images[k];
    const Line& b = labels[k];
    const Line& c = boxes[k];
    check(a.fields.size() >= 2, "images.txt line ", a.number, ": expected '<id> <relative path>', got '", a.text,
          "'", kReextract);
    check(b.fields.size() == 2, "image_class_labels.txt line ", b.number, ": expected '<id> <class>', got '", b.text,
          "'", kReextract);
    check(c.fields.size() == 5, "bounding_boxes.txt line ", c.number, ": expected '<id> <x> <y> <width> <height>', got '",
          c.text, "'", kReextract);
    CubImage image;
    image.line = a.number;
    image.id = parse_int(a.fields[0], "images.txt", a, "image id");
    const int64_t label_id = parse_int(b.fields[0], "image_class_labels.txt", b, "image id");
    const int64_t box_id = parse_int(c.fields[0], "bounding_boxes.txt", c, "image id");
    check(label_id == image.id, "image_class_labels.txt line ", b.number, ": image id ", label_id,
          " does not line up with id ", image.id, " on images.txt line ", a.number,
          "; the files must list the same ids in the same order", kReextract);
    check(box_id == image.id, "bounding_boxes.txt line ", c.number, ": image id ", box_id,
          " does not line up with id ", image.id, " on images.txt line ", a.number,
          "; the files must list the same ids in the same order", kReextract);
    image.cub_class = parse_int(b.fields[1], "image_class_labels.txt", b, "class");
    check(image.cub_class >= 1 && image.cub_class <= 200, "image_class_labels.txt line ", b.number, ": class ",
          image.cub_class, " is outside 1..200", kReextract);
    image.box = {parse_box_value(c.fields[1], "bounding_boxes.txt", c, "x"),
                 parse_box_value(c.fields[2], "bounding_boxes.txt", c, "y"),
                 parse_box_value(c.fields[3], "bounding_boxes.txt", c, "width"),
                 parse_box_value(c.fields[4], "bounding_boxes.txt", c, "height")};
    const std::string relative = after_first_field(a.text);
    image.path = (fs::path(root) / "images" / relative).string();
    check(fs::is_regular_file(image.path), "images.txt line ", a.number, ": image ", image.path,
          " does not exist; re-extract CUB_200_2011.tgz or remove the image from all three index files");
    all.push_back(std::move(image));
  }

  // Class names: classes.txt when present ("<class> <name>"), else the class number.
  std::map<int64_t, std::string> listed;
  const bool has_class_file = fs::exists(fs::path(root) / "classes.txt");
  if (has_class_file) {
    for (const Line& line : read_lines(root, "classes.txt")) {
      check(line.fields.size() == 2, "classes.txt line ", line.number, ": expected '<class> <name>', got '", line.text,
            "'", kReextract);
      listed[parse_int(line.fields[0], "classes.txt", line, "class")] = line.fields[1];
    }
  }

  std::vector<SplitPlan> plans;
  const auto shared = std::make_shared<std::vector<CubImage>>(std::move(all));
  for (const auto& [split, first, last] : {std::tuple<const char*, int64_t, int64_t>{"train", 1, 100},
                                           std::tuple<const char*, int64_t, int64_t>{"test", 101, 200}}) {
    std::map<int64_t, int64_t> label_of;  // CUB class -> split label
    for (const auto& image : *shared) {
      if (image.cub_class >= first && image.cub_class <= last) label_of[image.cub_class] = 0;
    }
    for (const auto& [cub_class, name] : listed) {
      if (cub_class < first || cub_class > last) continue;
      check(label_of.count(cub_class) == 1, "classes.txt: class ", cub_class, " (", name,
            ") has no images in image_class_labels.txt; an empty class cannot be sampled",
            kReextract);
    }
    check(!label_of.empty(), "CUB directory ", root, ": no images of classes ", first, "-", last, " (the ", split,
          " split) in image_class_labels.txt", kReextract);
    SplitPlan plan;
    plan.info.dataset = "cub_200_2011";
    plan.info.split = split;
    plan.info.channels = 3;
    plan.info.resize = options.resize;
    plan.info.bbox_crop = options.bbox_crop;
    int64_t next = 0;
    for (auto& [cub_class, label] : label_of) {
      label = next++;
      plan.info.class_names.push_back(has_class_file && listed.count(cub_class) ? listed[cub_class]
                                                                                 : std::to_string(cub_class));
    }
    plan.info.num_classes = next;
    auto rows = std::make_shared<std::vector<size_t>>();
    for (size_t k = 0; k < shared->size(); ++k) {
      const CubImage& image = (*shared)[k];
      if (image.cub_class < first || image.cub_class > last) continue;
      rows->push_back(k);
      plan.labels.push_back(label_of[image.cub_class]);
      plan.ids.push_back(image.id);
    }
    const bool crop = options.bbox_crop;
    auto box_of = [crop](const CubImage& image) { return crop ? std::optional<image::PixelBox>(image.box) : std::nullopt; };
    const CubImage& probe = (*shared)[rows->front()];
    const auto [height, width] = image::decoded_size(probe.path, box_of(probe), options.resize,
                                                     str("images.txt line ", probe.line));
    plan.info.height = height;
    plan.info.width = width;
    const int64_t resize = options.resize;
    plan.decode = [shared, rows, resize, height = height, width = width, box_of](int64_t i, uint8_t* dst) {
      const CubImage& image = (*shared)[(*rows)[i]];
      image::decode_rgb(image.path, box_of(image), resize, height, width, dst, str("images.txt line ", image.line));
    };
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace dml
