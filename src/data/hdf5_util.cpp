#include "data/hdf5_util.h"

#include "dml/util/error.h"

namespace dml::h5 {

std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}

Hdf5Lock::Hdf5Lock() : guard_(hdf5_mutex()) {
  static bool quiet = false;  // guarded by the mutex
  if (!quiet) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    quiet = true;
  }
}

namespace {
herr_t collect_innermost(unsigned n, const H5E_error2_t* err, void* client) {
  // The walk goes from the innermost frame outwards with H5E_WALK_UPWARD; keep the first.
  auto* out = static_cast<std::string*>(client);
  if (n == 0 && err != nullptr && err->desc != nullptr) *out = err->desc;
  return 0;
}
}  // namespace

std::string last_error_text() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_innermost, &text);
  H5Eclear2(H5E_DEFAULT);
  return text;
}

void Id::reset() {
  if (id_ >= 0) H5Idec_ref(id_);
  id_ = -1;
}

Id checked(hid_t id, const std::string& context) {
  if (id < 0) {
    const std::string why = last_error_text();
    throw Error(str(context, why.empty() ? "" : " (HDF5: " + why + ")"));
  }
  return Id(id);
}

void check_status(herr_t status, const std::string& context) {
  if (status < 0) {
    const std::string why = last_error_text();
    throw Error(str(context, why.empty() ? "" : " (HDF5: " + why + ")"));
  }
}

namespace {
// Opens attribute `name` and returns (attribute, type, number of elements) or an invalid Id.
struct OpenedAttribute {
  Id attribute, type;
  hssize_t elements = 0;
  int rank = 0;
};

std::optional<OpenedAttribute> open_attribute(hid_t object, const std::string& name, const std::string& file) {
  const htri_t exists = H5Aexists(object, name.c_str());
  check_status(exists, str(file, ": cannot look up attribute ", name));
  if (exists == 0) return std::nullopt;
  OpenedAttribute out;
  out.attribute = checked(H5Aopen(object, name.c_str(), H5P_DEFAULT), str(file, ": cannot open attribute ", name));
  out.type = checked(H5Aget_type(out.attribute.get()), str(file, ": attribute ", name));
  Id space = checked(H5Aget_space(out.attribute.get()), str(file, ": attribute ", name));
  out.rank = H5Sget_simple_extent_ndims(space.get());
  out.elements = H5Sget_simple_extent_npoints(space.get());
  return out;
}

const char* kRewrite = "; re-create the shards with dml_prepare (launch/prepare_*.sh) or fix the writer";
}  // namespace

std::optional<int64_t> read_int_attribute(hid_t object, const std::string& name, const std::string& file) {
  auto a = open_attribute(object, name, file);
  if (!a) return std::nullopt;
  check(H5Tget_class(a->type.get()) == H5T_INTEGER, file, ": attribute ", name,
        " must be an integer (it has another HDF5 type class)", kRewrite);
  check(a->elements == 1 && a->rank <= 1, file, ": attribute ", name, " must be a single integer, it has ",
        a->elements, " elements", kRewrite);
  int64_t value = 0;
  check_status(H5Aread(a->attribute.get(), H5T_NATIVE_INT64, &value), str(file, ": cannot read attribute ", name));
  return value;
}

namespace {
std::vector<std::string> read_strings(const OpenedAttribute& a, const std::string& name, const std::string& file) {
  check(H5Tget_class(a.type.get()) == H5T_STRING, file, ": attribute ", name, " must be a string", kRewrite);
  const size_t n = static_cast<size_t>(a.elements);
  std::vector<std::string> out;
  out.reserve(n);
  const htri_t is_variable = H5Tis_variable_str(a.type.get());
  check_status(is_variable, str(file, ": attribute ", name));
  if (is_variable > 0) {
    Id memory_type = checked(H5Tcopy(H5T_C_S1), "H5Tcopy");
    H5Tset_size(memory_type.get(), H5T_VARIABLE);
    H5Tset_cset(memory_type.get(), H5Tget_cset(a.type.get()));
    std::vector<char*> pointers(n, nullptr);
    check_status(H5Aread(a.attribute.get(), memory_type.get(), pointers.data()),
                 str(file, ": cannot read attribute ", name));
    for (char* p : pointers) out.emplace_back(p != nullptr ? p : "");
    Id space = checked(H5Aget_space(a.attribute.get()), "H5Aget_space");
    H5Dvlen_reclaim(memory_type.get(), space.get(), H5P_DEFAULT, pointers.data());
  } else {
    const size_t width = H5Tget_size(a.type.get());
    Id memory_type = checked(H5Tcopy(H5T_C_S1), "H5Tcopy");
    H5Tset_size(memory_type.get(), width);
    H5Tset_strpad(memory_type.get(), H5T_STR_NULLPAD);
    H5Tset_cset(memory_type.get(), H5Tget_cset(a.type.get()));
    std::vector<char> buffer(n * width + 1, '\0');
    check_status(H5Aread(a.attribute.get(), memory_type.get(), buffer.data()),
                 str(file, ": cannot read attribute ", name));
    for (size_t i = 0; i < n; ++i) {
      const char* begin = buffer.data() + i * width;
      size_t len = 0;
      while (len < width && begin[len] != '\0') ++len;
      out.emplace_back(begin, len);
    }
  }
  return out;
}
}  // namespace

std::optional<std::string> read_string_attribute(hid_t object, const std::string& name, const std::string& file) {
  auto a = open_attribute(object, name, file);
  if (!a) return std::nullopt;
  check(a->elements == 1 && a->rank <= 1, file, ": attribute ", name, " must be a single string, it has ",
        a->elements, " elements", kRewrite);
  return read_strings(*a, name, file).front();
}

std::optional<std::vector<std::string>> read_string_array_attribute(hid_t object, const std::string& name,
                                                                    const std::string& file) {
  auto a = open_attribute(object, name, file);
  if (!a) return std::nullopt;
  check(a->rank <= 1, file, ": attribute ", name, " must be a 1-d array of strings, it has rank ", a->rank, kRewrite);
  return read_strings(*a, name, file);
}

void write_int_attribute(hid_t object, const std::string& name, int64_t value, hid_t file_type) {
  Id space = checked(H5Screate(H5S_SCALAR), "H5Screate");
  Id attribute = checked(H5Acreate2(object, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                         str("cannot create attribute ", name));
  check_status(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), str("cannot write attribute ", name));
}

namespace {
Id utf8_variable_string_type() {
  Id type = checked(H5Tcopy(H5T_C_S1), "H5Tcopy");
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}
}  // namespace

void write_string_attribute(hid_t object, const std::string& name, const std::string& value) {
  Id type = utf8_variable_string_type();
  Id space = checked(H5Screate(H5S_SCALAR), "H5Screate");
  Id attribute = checked(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                         str("cannot create attribute ", name));
  const char* pointer = value.c_str();
  check_status(H5Awrite(attribute.get(), type.get(), &pointer), str("cannot write attribute ", name));
}

void write_string_array_attribute(hid_t object, const std::string& name, const std::vector<std::string>& values) {
  Id type = utf8_variable_string_type();
  const hsize_t n = values.size();
  Id space = checked(H5Screate_simple(1, &n, nullptr), "H5Screate_simple");
  Id attribute = checked(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                         str("cannot create attribute ", name));
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  check_status(H5Awrite(attribute.get(), type.get(), pointers.data()), str("cannot write attribute ", name));
}

}  // namespace dml::h5
