#pragma once
// Private: the command-line conventions every dml executable shares, on top of Boost.Program_options.
// - A flag given twice takes its last value (as argparse does), so a wrapper script can put "$@"
//   after its own flags and the user's value wins: last_occurrences() drops the earlier ones.
// - --help prints defaults as a person writes them (0.1, 1.4, 1e-07), not as 17 digits: value()
//   attaches the shortest text that reads back to the same double.
// Header-only, so small tools use it without linking the cli library.
#include <boost/program_options.hpp>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "dml/util/error.h"

namespace dml::cli {

// The shortest decimal text (up to 17 significant digits) that parses back to exactly `value`.
inline std::string format_number(double value) {
  for (int precision = 1; precision <= 17; ++precision) {
    std::ostringstream out;
    out.precision(precision);
    out << value;
    if (std::strtod(out.str().c_str(), nullptr) == value) return out.str();
  }
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

// po::value bound to `target` with its current content as the default, printed by format_number
// for floating-point values.
template <typename T>
boost::program_options::typed_value<T>* value(T* target) {
  auto* v = boost::program_options::value(target);
  if constexpr (std::is_floating_point_v<T>) {
    v->default_value(*target, format_number(static_cast<double>(*target)));
  } else {
    v->default_value(*target);
  }
  return v;
}

// An on/off flag that may be repeated (a plain bool_switch refuses a second occurrence).
inline boost::program_options::typed_value<bool>* switch_value(bool* target) {
  return boost::program_options::bool_switch(target);
}

// Keeps only the last occurrence of every option, in order: "--epochs 2 ... --epochs 5" means 5.
template <typename Char>
boost::program_options::basic_parsed_options<Char> last_occurrences(
    boost::program_options::basic_parsed_options<Char> parsed) {
  std::set<std::string> seen;
  std::vector<boost::program_options::basic_option<Char>> kept;
  for (auto it = parsed.options.rbegin(); it != parsed.options.rend(); ++it) {
    if (it->string_key.empty() || seen.insert(it->string_key).second) kept.insert(kept.begin(), *it);
  }
  parsed.options = std::move(kept);
  return parsed;
}

inline std::string join(const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + std::to_string(values[i]);
  return out;
}

// "12,14,16" -> {12, 14, 16}; empty items are skipped. Throws dml::Error naming --flag.
inline std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int64_t> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    check(end != item.c_str() && *end == '\0', "--", flag, ": '", text,
          "' is not a comma-separated list of integers (e.g. 12,14,16,18)");
    values.push_back(v);
  }
  return values;
}

}  // namespace dml::cli
