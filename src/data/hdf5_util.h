#pragma once
// Private HDF5 helpers for the shard reader and writer. Debian's HDF5 is built without thread
// safety, so every HDF5 call in the process goes through hdf5_mutex(); the helpers here assume
// the caller holds it (take it with `Hdf5Lock lock;`).
#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace dml::h5 {

std::mutex& hdf5_mutex();

// Holds the process-wide HDF5 mutex; also turns off HDF5's automatic error printing once
// (errors are reported through dml::Error with HDF5's own message instead).
class Hdf5Lock {
 public:
  Hdf5Lock();
 private:
  std::lock_guard<std::mutex> guard_;
};

// The innermost message on HDF5's error stack, e.g. "unable to open file"; empty when none.
std::string last_error_text();

// Owns an HDF5 identifier and closes it with H5Idec_ref (caller holds the mutex at destruction).
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  ~Id() { reset(); }
  Id(Id&& other) noexcept : id_(other.id_) { other.id_ = -1; }
  Id& operator=(Id&& other) noexcept {
    if (this != &other) { reset(); id_ = other.id_; other.id_ = -1; }
    return *this;
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = -1;
};

// Throws dml::Error("<context>: <HDF5 message>") when id < 0; otherwise returns an owning Id.
Id checked(hid_t id, const std::string& context);
// Throws dml::Error when status < 0.
void check_status(herr_t status, const std::string& context);

// Attributes on an object (file root). Readers return nullopt when the attribute is absent and
// throw dml::Error (naming `file` and the attribute) when it has the wrong class or shape.
std::optional<int64_t> read_int_attribute(hid_t object, const std::string& name, const std::string& file);
std::optional<std::string> read_string_attribute(hid_t object, const std::string& name, const std::string& file);
std::optional<std::vector<std::string>> read_string_array_attribute(hid_t object, const std::string& name,
                                                                    const std::string& file);
void write_int_attribute(hid_t object, const std::string& name, int64_t value, hid_t file_type);
void write_string_attribute(hid_t object, const std::string& name, const std::string& value);
void write_string_array_attribute(hid_t object, const std::string& name, const std::vector<std::string>& values);

}  // namespace dml::h5
