#pragma once
// Errors: every failure the user can fix is a dml::Error whose message names the file or flag,
// the field, and the fix. One catch in each main logs it and aborts every rank.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace dml {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values: str("shard ", path, ": ", n, " rows").
template <typename... Parts>
std::string str(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

// Throws dml::Error(str(parts...)) when `condition` is false.
template <typename... Parts>
void check(bool condition, Parts&&... parts) {
  if (!condition) throw Error(str(std::forward<Parts>(parts)...));
}

}  // namespace dml
