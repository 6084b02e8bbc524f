#include "dml/model/pretrained.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "dml/util/error.h"

namespace dml {

namespace fs = std::filesystem;

std::string default_pretrained_path(const std::string& model_name) {
  const char* dir = std::getenv("DML_PRETRAINED_DIR");
  if (dir != nullptr && *dir != '\0') return (fs::path(dir) / (model_name + ".pt")).string();
  const char* cache = std::getenv("XDG_CACHE_HOME");
  fs::path base;
  if (cache != nullptr && *cache != '\0') {
    base = cache;
  } else {
    const char* home = std::getenv("HOME");
    base = fs::path(home != nullptr ? home : ".") / ".cache";
  }
  return (base / "dml" / "pretrained" / (model_name + ".pt")).string();
}

std::string convert_command(const std::string& model_name, const std::string& path) {
  return str("python3 launch/convert_torchvision.py --model ", model_name, " --output ", path);
}

namespace {

std::string shape_string(at::IntArrayRef shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, /*pos=*/0) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Enough names to recognise the pattern (a whole stage, a family's naming) without flooding the
// message with the ~900 tensors of a resnet152.
constexpr size_t kNamesShown = 12;

std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  const size_t shown = std::min(names.size(), kNamesShown);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > shown) out += str(", ... (", names.size(), " in all)");
  return out;
}

std::map<std::string, torch::Tensor> read_tensor_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "pretrained weights ", path, ": cannot open the file for reading");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw Error(str("pretrained weights ", path, ": not readable by torch::pickle_load (",
                    e.what_without_backtrace(),
                    "); write it with torch.save(dict(model.state_dict()), path), e.g. by launch/convert_torchvision.py"));
  }
  check(value.isGenericDict(), "pretrained weights ", path, ": holds a ", value.tagKind(),
        ", expected a dict name -> tensor; write it with torch.save(dict(model.state_dict()), path)");
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& entry : value.toGenericDict()) {
    check(entry.key().isString() && entry.value().isTensor(), "pretrained weights ", path,
          ": every entry must map a string to a tensor; entry of kinds ", entry.key().tagKind(), " -> ",
          entry.value().tagKind(), " is not");
    tensors[entry.key().toStringRef()] = entry.value().toTensor();
  }
  return tensors;
}

}  // namespace

void check_pretrained_file_exists(const std::string& model_name, const std::string& path) {
  if (fs::exists(path)) return;
  std::string message = str("pretrained weights for ", model_name, " not found at ", path,
                            " (--pretrained-path, default $DML_PRETRAINED_DIR/<model>.pt or "
                            "~/.cache/dml/pretrained/<model>.pt); create the file with:\n  ",
                            convert_command(model_name, path));
  if (ends_with(model_name, "_v2")) {
    message += str("\nnote: torchvision has no ", model_name,
                   " weights; use a *_v1 model for ImageNet weights, or write a dict name -> tensor "
                   "with this backbone's names yourself");
  }
  throw Error(message);
}

void load_pretrained_backbone(torch::nn::Module& backbone, const std::string& path,
                              const std::string& model_name) {
  check_pretrained_file_exists(model_name, path);
  const std::map<std::string, torch::Tensor> file = read_tensor_dict(path);

  std::map<std::string, torch::Tensor> own;
  for (const auto& item : backbone.named_parameters(/*recurse=*/true)) own[item.key()] = item.value();
  for (const auto& item : backbone.named_buffers(/*recurse=*/true)) own[item.key()] = item.value();

  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, tensor] : own) {
    const auto it = file.find(name);
    if (it == file.end()) {
      missing.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      mismatched.push_back(str(name, " (file ", shape_string(it->second.sizes()), ", model ",
                               shape_string(tensor.sizes()), ")"));
    }
  }
  for (const auto& [name, tensor] : file) {
    if (starts_with(name, "fc.")) continue;  // the ImageNet classifier; we use our own head
    if (own.count(name) == 0) unexpected.push_back(name);
  }
  std::string problems;
  if (!missing.empty()) problems += str("\n  missing from the file: ", name_list(missing));
  if (!unexpected.empty()) problems += str("\n  in the file but not in the model: ", name_list(unexpected));
  if (!mismatched.empty()) problems += str("\n  shape mismatch: ", name_list(mismatched));
  check(problems.empty(), "pretrained weights ", path, " do not fit model ", model_name,
        " (check --model, --in-channels and the small-input stem, which change the first conv):", problems);

  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : own) {
    tensor.copy_(file.at(name).to(tensor.device(), tensor.scalar_type()));
  }
}

}  // namespace dml
