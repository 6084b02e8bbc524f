#include "dml/data/shard_writer.h"

#include <filesystem>

#include "data/hdf5_util.h"
#include "dml/util/error.h"

namespace dml {
namespace fs = std::filesystem;

namespace {
struct ShardOutput {
  std::string final_path, temp_path;
  int64_t rows = 0;
  h5::Id file, images;
};

std::string class_text(const ShardSetInfo& info, int64_t label) {
  if (static_cast<size_t>(label) < info.class_names.size()) return str(label, " ('", info.class_names[label], "')");
  return str(label);
}
}  // namespace

struct SplitWriter::Impl {
  std::string dir, split;
  ShardSetInfo info;
  std::vector<int64_t> labels, ids;
  bool overwrite = false;
  std::vector<int> shard_of;        // [N]
  std::vector<int64_t> row_of;      // [N], row inside its shard
  std::vector<char> written;        // [N]
  int64_t written_count = 0;
  std::vector<ShardOutput> shards;
  bool finished = false;

  void create_shard(ShardOutput& shard, int index);
  void close_all();
};

void SplitWriter::Impl::create_shard(ShardOutput& shard, int index) {
  const std::string& path = shard.temp_path;
  shard.file = h5::checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                           str("cannot create shard ", path, "; check that the output directory is writable"));
  const hid_t root = shard.file.get();
  h5::write_int_attribute(root, "format_version", kShardFormatVersion, H5T_STD_I32LE);
  h5::write_string_attribute(root, "dataset", info.dataset);
  h5::write_string_attribute(root, "split", split);
  h5::write_int_attribute(root, "num_classes", info.num_classes, H5T_STD_I64LE);
  h5::write_int_attribute(root, "height", info.height, H5T_STD_I64LE);
  h5::write_int_attribute(root, "width", info.width, H5T_STD_I64LE);
  h5::write_int_attribute(root, "channels", info.channels, H5T_STD_I64LE);
  if (!info.class_names.empty()) h5::write_string_array_attribute(root, "class_names", info.class_names);
  h5::write_int_attribute(root, "resize", info.resize, H5T_STD_I64LE);
  h5::write_int_attribute(root, "bbox_crop", info.bbox_crop ? 1 : 0, H5T_STD_I32LE);

  // images: uint8 [N,H,W,C], one image per chunk, no filters (so chunks are written directly).
  const hsize_t dims[4] = {static_cast<hsize_t>(shard.rows), static_cast<hsize_t>(info.height),
                           static_cast<hsize_t>(info.width), static_cast<hsize_t>(info.channels)};
  const hsize_t chunk[4] = {1, dims[1], dims[2], dims[3]};
  h5::Id space = h5::checked(H5Screate_simple(4, dims, nullptr), "H5Screate_simple");
  h5::Id properties = h5::checked(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate");
  h5::check_status(H5Pset_chunk(properties.get(), 4, chunk), "H5Pset_chunk");
  shard.images = h5::checked(H5Dcreate2(root, "images", H5T_STD_U8LE, space.get(), H5P_DEFAULT, properties.get(),
                                        H5P_DEFAULT),
                             str("cannot create dataset images in ", path));

  // labels and ids of this shard's rows, in input order.
  std::vector<int64_t> shard_labels, shard_ids;
  shard_labels.reserve(shard.rows);
  shard_ids.reserve(shard.rows);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (shard_of[i] != index) continue;
    shard_labels.push_back(labels[i]);
    shard_ids.push_back(ids[i]);
  }
  const hsize_t n = static_cast<hsize_t>(shard.rows);
  h5::Id vector_space = h5::checked(H5Screate_simple(1, &n, nullptr), "H5Screate_simple");
  for (const auto& [name, values] : {std::pair<const char*, const std::vector<int64_t>*>{"labels", &shard_labels},
                                     std::pair<const char*, const std::vector<int64_t>*>{"ids", &shard_ids}}) {
    h5::Id dataset = h5::checked(H5Dcreate2(root, name, H5T_STD_I64LE, vector_space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                            H5P_DEFAULT),
                                 str("cannot create dataset ", name, " in ", path));
    h5::check_status(H5Dwrite(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values->data()),
                     str("cannot write dataset ", name, " in ", path));
  }
}

void SplitWriter::Impl::close_all() {
  for (auto& shard : shards) {
    shard.images.reset();
    shard.file.reset();
  }
}

SplitWriter::SplitWriter(const std::string& dir, const std::string& split, const ShardSetInfo& info,
                         std::vector<int64_t> labels, std::vector<int64_t> ids, int shards, bool overwrite)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.dir = dir;
  m.split = split;
  m.info = info;
  m.info.split = split;
  m.labels = std::move(labels);
  m.ids = std::move(ids);
  m.overwrite = overwrite;
  const std::string where = str("split '", split, "' for ", dir);

  check(!split.empty() && split.find('/') == std::string::npos, "shard writer: split name '", split,
        "' must be non-empty and contain no '/'");
  check(info.num_classes >= 1, where, ": num_classes is ", info.num_classes, "; a split needs at least one class");
  check(info.height >= 1 && info.width >= 1 && info.channels >= 1, where, ": image shape ", info.height, "x",
        info.width, "x", info.channels, " must be positive (height, width, channels)");
  check(info.class_names.empty() || static_cast<int64_t>(info.class_names.size()) == info.num_classes, where,
        ": class_names has ", info.class_names.size(), " entries but num_classes is ", info.num_classes,
        "; give one name per class or none");
  check(m.labels.size() == m.ids.size(), where, ": ", m.labels.size(), " labels but ", m.ids.size(),
        " ids; give one id per image");
  check(shards >= 1 && shards <= info.num_classes, where, ": --shards ", shards, " must be between 1 and ",
        "the number of classes (", info.num_classes, "), because a class lives wholly in one shard");

  std::vector<int64_t> per_class(info.num_classes, 0);
  for (size_t i = 0; i < m.labels.size(); ++i) {
    const int64_t label = m.labels[i];
    check(label >= 0 && label < info.num_classes, where, ": image ", i, " (id ", m.ids[i], ") has label ", label,
          ", outside 0..", info.num_classes - 1);
    ++per_class[label];
  }
  for (int64_t c = 0; c < info.num_classes; ++c) {
    check(per_class[c] > 0, where, ": class ", class_text(info, c),
          " has no images; remove the empty class from the input or add images to it");
  }

  const auto existing = list_shard_files(dir, split);
  check(existing.empty() || overwrite, "output directory ", dir, " already holds shards of split '", split, "' (",
        existing.front(), existing.size() > 1 ? ", ..." : "",
        "); pass --overwrite to replace them, or choose another --output directory");
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(fs::is_directory(dir), "cannot create output directory ", dir, ": ", ec.message());

  m.shard_of.resize(m.labels.size());
  m.row_of.resize(m.labels.size());
  m.written.assign(m.labels.size(), 0);
  m.shards.resize(shards);
  for (int s = 0; s < shards; ++s) {
    m.shards[s].final_path = (fs::path(dir) / shard_file_name(split, s, shards)).string();
    m.shards[s].temp_path = m.shards[s].final_path + ".tmp";
  }
  for (size_t i = 0; i < m.labels.size(); ++i) {
    const int s = static_cast<int>(m.labels[i] % shards);  // class c -> shard c % count
    m.shard_of[i] = s;
    m.row_of[i] = m.shards[s].rows++;
  }
  h5::Hdf5Lock lock;
  try {
    for (int s = 0; s < shards; ++s) m.create_shard(m.shards[s], s);
  } catch (...) {
    m.close_all();
    for (const auto& shard : m.shards) fs::remove(shard.temp_path, ec);
    throw;
  }
}

SplitWriter::~SplitWriter() {
  if (!impl_ || impl_->finished) return;
  {
    h5::Hdf5Lock lock;
    impl_->close_all();
  }
  std::error_code ec;
  for (const auto& shard : impl_->shards) fs::remove(shard.temp_path, ec);
}

int64_t SplitWriter::size() const { return static_cast<int64_t>(impl_->labels.size()); }

void SplitWriter::write_image(int64_t index, const uint8_t* hwc) {
  Impl& m = *impl_;
  check(index >= 0 && index < size(), "shard writer: image index ", index, " outside 0..", size() - 1);
  h5::Hdf5Lock lock;
  check(!m.finished, "shard writer: write_image after finish()");
  check(!m.written[index], "shard writer: image ", index, " (id ", m.ids[index], ") written twice");
  ShardOutput& shard = m.shards[m.shard_of[index]];
  const hsize_t offset[4] = {static_cast<hsize_t>(m.row_of[index]), 0, 0, 0};
  const size_t bytes = static_cast<size_t>(m.info.height * m.info.width * m.info.channels);
  // Direct chunk write: one image is exactly one unfiltered chunk.
  h5::check_status(H5Dwrite_chunk(shard.images.get(), H5P_DEFAULT, 0, offset, bytes, hwc),
                   str("cannot write image ", index, " to ", shard.temp_path, "; is the disk full?"));
  m.written[index] = 1;
  ++m.written_count;
}

std::vector<std::string> SplitWriter::finish() {
  Impl& m = *impl_;
  check(!m.finished, "shard writer: finish() called twice");
  check(m.written_count == size(), "shard writer: split '", m.split, "': only ", m.written_count, " of ", size(),
        " images were written before finish()");
  {
    h5::Hdf5Lock lock;
    for (auto& shard : m.shards) {
      h5::check_status(H5Fflush(shard.file.get(), H5F_SCOPE_GLOBAL),
                       str("cannot flush ", shard.temp_path, "; is the disk full?"));
    }
    m.close_all();
  }
  std::error_code ec;
  if (m.overwrite) {
    for (const auto& old : list_shard_files(m.dir, m.split)) fs::remove(fs::path(m.dir) / old, ec);
  }
  std::vector<std::string> paths;
  for (const auto& shard : m.shards) {
    fs::rename(shard.temp_path, shard.final_path, ec);
    check(!ec, "cannot rename ", shard.temp_path, " to ", shard.final_path, ": ", ec.message());
    paths.push_back(shard.final_path);
  }
  m.finished = true;
  return paths;
}

void write_split(const std::string& dir, const std::string& split, const ShardSetInfo& info_without_size,
                 const uint8_t* images_nhwc, const std::vector<int64_t>& labels, const std::vector<int64_t>& ids,
                 int shards, bool overwrite) {
  SplitWriter writer(dir, split, info_without_size, labels, ids, shards, overwrite);
  const int64_t bytes = info_without_size.height * info_without_size.width * info_without_size.channels;
  for (int64_t i = 0; i < writer.size(); ++i) writer.write_image(i, images_nhwc + i * bytes);
  writer.finish();
}

}  // namespace dml
