#include "dml/data/embedding_export.h"

#include <filesystem>

#include "data/hdf5_util.h"
#include "dml/util/atomic_file.h"
#include "dml/util/error.h"

namespace dml {
namespace {

void write_dataset(hid_t root, const std::string& name, hid_t file_type, hid_t memory_type, const void* data,
                   std::vector<hsize_t> dims, const std::string& file) {
  h5::Id space = h5::checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "H5Screate_simple");
  h5::Id dataset = h5::checked(H5Dcreate2(root, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                          H5P_DEFAULT),
                               str(file, ": cannot create dataset ", name));
  h5::check_status(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                   str(file, ": cannot write dataset ", name, " (disk full?)"));
}

void write_set(hid_t root, const std::string& prefix, const ExportedSet& set, const std::string& file) {
  const auto n = static_cast<hsize_t>(set.labels.size());
  check(set.embeddings.size() == n * static_cast<size_t>(set.dim) && set.ids.size() == n && set.rows.size() == n,
        "embedding export: ", prefix, "sizes disagree (", set.embeddings.size(), " values, ", n, " labels, ",
        set.ids.size(), " ids, ", set.rows.size(), " rows, dim ", set.dim, ")");
  write_dataset(root, prefix + "embeddings", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, set.embeddings.data(),
                {n, static_cast<hsize_t>(set.dim)}, file);
  write_dataset(root, prefix + "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, set.labels.data(), {n}, file);
  write_dataset(root, prefix + "ids", H5T_STD_I64LE, H5T_NATIVE_INT64, set.ids.data(), {n}, file);
  write_dataset(root, prefix + "rows", H5T_STD_I64LE, H5T_NATIVE_INT64, set.rows.data(), {n}, file);
}

}  // namespace

void write_embedding_export(const std::string& path, const EmbeddingExport& data, bool overwrite) {
  check(overwrite || !std::filesystem::exists(path), "export ", path,
        " exists; choose another path or pass --overwrite to replace it");
  const auto parent = std::filesystem::path(path).parent_path();
  check(parent.empty() || std::filesystem::is_directory(parent), "export ", path, ": directory ", parent.string(),
        " does not exist; create it first");
  write_file_atomically(path, [&](const std::string& tmp) {
    h5::Hdf5Lock lock;
    h5::Id file = h5::checked(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                              str("export ", path, ": cannot create the file"));
    const hid_t root = file.get();
    h5::write_string_attribute(root, "format", "dml-embeddings");
    h5::write_int_attribute(root, "format_version", kEmbeddingExportVersion, H5T_STD_I64LE);
    h5::write_string_attribute(root, "model", data.model);
    h5::write_int_attribute(root, "embed_dim", data.embed_dim, H5T_STD_I64LE);
    h5::write_string_attribute(root, "checkpoint", data.checkpoint);
    h5::write_string_attribute(root, "data_path", data.data_path);
    h5::write_string_attribute(root, "split", data.split);
    h5::write_int_attribute(root, "num_classes", data.num_classes, H5T_STD_I64LE);
    if (!data.class_names.empty()) h5::write_string_array_attribute(root, "class_names", data.class_names);
    write_set(root, "", data.gallery, path);
    if (data.has_query) {
      h5::write_string_attribute(root, "query_split", data.query_split);
      write_set(root, "query_", data.query, path);
    }
    h5::check_status(H5Fflush(root, H5F_SCOPE_GLOBAL), str("export ", path, ": cannot flush (disk full?)"));
  });
}

}  // namespace dml
