#include "dml/data/shard_format.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>

namespace dml {

std::string shard_file_name(const std::string& split, int index, int count) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "-%05d-of-%05d.h5", index, count);
  return split + digits;
}

std::optional<ShardFileName> parse_shard_file_name(const std::string& file_name) {
  static const std::regex pattern(R"(^(.+)-([0-9]{5})-of-([0-9]{5})\.h5$)");
  std::smatch match;
  if (!std::regex_match(file_name, match, pattern)) return std::nullopt;
  ShardFileName out;
  out.split = match[1].str();
  out.index = std::stoi(match[2].str());
  out.count = std::stoi(match[3].str());
  return out;
}

std::vector<std::string> list_shard_files(const std::string& dir, const std::string& split) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    auto parsed = parse_shard_file_name(name);
    if (parsed && (split.empty() || parsed->split == split)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace dml
