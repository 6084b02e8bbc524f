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

// An option value that breaks a component's rule, reported by the component that owns the rule, in
// its own terms. `field` is the component's name for the option (e.g. "batch_k"); the command-line
// layer, which alone knows flag names, maps it to the flag that set it when it reports the error.
class OptionError : public Error {
 public:
  OptionError(std::string field, const std::string& message) : Error(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
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

// Throws dml::OptionError(field, str(parts...)) when `condition` is false.
template <typename... Parts>
void check_option(bool condition, const char* field, Parts&&... parts) {
  if (!condition) throw OptionError(field, str(std::forward<Parts>(parts)...));
}

}  // namespace dml
