#include "dml/data/shard_set.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "data/hdf5_util.h"
#include "dml/util/error.h"

namespace dml {
namespace fs = std::filesystem;

namespace {
const char* kFix = "; re-create the split with dml_prepare (launch/prepare_*.sh) or fix the program that wrote it";

struct ShardHandle {
  std::string path;
  int64_t rows = 0;
  h5::Id file, images;
  bool direct_chunks = false;  // images chunked [1,H,W,C] without filters: read chunks directly
};

// Attributes of one shard, read and type-checked.
struct ShardHeader {
  ShardSetInfo info;
  int64_t rows = 0;
};

int64_t required_int(hid_t root, const char* name, const std::string& path) {
  auto value = h5::read_int_attribute(root, name, path);
  check(value.has_value(), path, ": attribute ", name, " is missing", kFix);
  return *value;
}

std::string required_string(hid_t root, const char* name, const std::string& path) {
  auto value = h5::read_string_attribute(root, name, path);
  check(value.has_value(), path, ": attribute ", name, " is missing", kFix);
  return *value;
}

// Checks a dataset's existence, integer dtype (byte size and signedness) and rank; returns its dims.
std::vector<hsize_t> dataset_dims(hid_t root, const char* name, size_t type_bytes, H5T_sign_t sign, int rank,
                                  const char* expected, const std::string& path) {
  const htri_t exists = H5Lexists(root, name, H5P_DEFAULT);
  check(exists > 0, path, ": dataset ", name, " is missing (expected ", expected, ")", kFix);
  h5::Id dataset = h5::checked(H5Dopen2(root, name, H5P_DEFAULT), str(path, ": cannot open dataset ", name));
  h5::Id type = h5::checked(H5Dget_type(dataset.get()), str(path, ": dataset ", name));
  const bool type_ok = H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == type_bytes &&
                       H5Tget_sign(type.get()) == sign;
  check(type_ok, path, ": dataset ", name, " has the wrong dtype (class ", static_cast<int>(H5Tget_class(type.get())),
        ", ", H5Tget_size(type.get()), " bytes, ", H5Tget_sign(type.get()) == H5T_SGN_NONE ? "unsigned" : "signed",
        "); expected ", expected, kFix);
  h5::Id space = h5::checked(H5Dget_space(dataset.get()), str(path, ": dataset ", name));
  const int actual_rank = H5Sget_simple_extent_ndims(space.get());
  check(actual_rank == rank, path, ": dataset ", name, " has rank ", actual_rank, "; expected ", expected, kFix);
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

ShardHeader read_header(hid_t root, const std::string& path, const std::string& split) {
  ShardHeader h;
  const int64_t version = required_int(root, "format_version", path);
  check(version == kShardFormatVersion, path, ": attribute format_version is ", version, ", this build reads ",
        kShardFormatVersion, kFix);
  h.info.dataset = required_string(root, "dataset", path);
  h.info.split = required_string(root, "split", path);
  check(h.info.split == split, path, ": attribute split is '", h.info.split, "' but the file name says '", split,
        "'; rename the file or fix its split attribute");
  h.info.num_classes = required_int(root, "num_classes", path);
  h.info.height = required_int(root, "height", path);
  h.info.width = required_int(root, "width", path);
  h.info.channels = required_int(root, "channels", path);
  check(h.info.num_classes >= 1, path, ": attribute num_classes is ", h.info.num_classes, ", must be >= 1", kFix);
  for (auto [name, value] : {std::pair<const char*, int64_t>{"height", h.info.height}, {"width", h.info.width},
                             {"channels", h.info.channels}}) {
    check(value >= 1, path, ": attribute ", name, " is ", value, ", must be >= 1", kFix);
  }
  h.info.resize = h5::read_int_attribute(root, "resize", path).value_or(0);
  h.info.bbox_crop = h5::read_int_attribute(root, "bbox_crop", path).value_or(0) != 0;
  if (auto names = h5::read_string_array_attribute(root, "class_names", path)) {
    check(static_cast<int64_t>(names->size()) == h.info.num_classes, path, ": attribute class_names has ",
          names->size(), " entries but num_classes is ", h.info.num_classes, kFix);
    h.info.class_names = std::move(*names);
  }

  const auto image_dims = dataset_dims(root, "images", 1, H5T_SGN_NONE, 4, "uint8 [N,H,W,C]", path);
  const auto label_dims = dataset_dims(root, "labels", 8, H5T_SGN_2, 1, "int64 [N]", path);
  const auto id_dims = dataset_dims(root, "ids", 8, H5T_SGN_2, 1, "int64 [N]", path);
  const int64_t expected[3] = {h.info.height, h.info.width, h.info.channels};
  const char* names[3] = {"height", "width", "channels"};
  for (int d = 0; d < 3; ++d) {
    check(static_cast<int64_t>(image_dims[d + 1]) == expected[d], path, ": dataset images has ", names[d], " ",
          image_dims[d + 1], " (dimension ", d + 1, ") but attribute ", names[d], " is ", expected[d], kFix);
  }
  h.rows = static_cast<int64_t>(image_dims[0]);
  check(label_dims[0] == image_dims[0] && id_dims[0] == image_dims[0], path, ": datasets disagree on N: images has ",
        image_dims[0], " rows, labels ", label_dims[0], ", ids ", id_dims[0], kFix);
  return h;
}

void require_same(const ShardSetInfo& a, const ShardSetInfo& b, const std::string& first, const std::string& path) {
  auto fail = [&](const char* field) {
    throw Error(str(path, ": attribute ", field, " differs from ", first,
                    "; the shards come from different preparations, re-create the split with dml_prepare"));
  };
  if (a.dataset != b.dataset) fail("dataset");
  if (a.num_classes != b.num_classes) fail("num_classes");
  if (a.height != b.height) fail("height");
  if (a.width != b.width) fail("width");
  if (a.channels != b.channels) fail("channels");
  if (a.class_names != b.class_names) fail("class_names");
  if (a.resize != b.resize) fail("resize");
  if (a.bbox_crop != b.bbox_crop) fail("bbox_crop");
}

void read_int64_dataset(hid_t root, const char* name, int64_t* dst, const std::string& path) {
  h5::Id dataset = h5::checked(H5Dopen2(root, name, H5P_DEFAULT), str(path, ": cannot open dataset ", name));
  h5::check_status(H5Dread(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst),
                   str(path, ": cannot read dataset ", name, "; the file may be truncated", kFix));
}

bool chunks_are_images(hid_t images, const ShardSetInfo& info) {
  h5::Id plist = h5::checked(H5Dget_create_plist(images), "H5Dget_create_plist");
  if (H5Pget_layout(plist.get()) != H5D_CHUNKED || H5Pget_nfilters(plist.get()) != 0) return false;
  hsize_t chunk[4] = {0, 0, 0, 0};
  if (H5Pget_chunk(plist.get(), 4, chunk) != 4) return false;
  return chunk[0] == 1 && static_cast<int64_t>(chunk[1]) == info.height &&
         static_cast<int64_t>(chunk[2]) == info.width && static_cast<int64_t>(chunk[3]) == info.channels;
}
}  // namespace

struct ShardSet::Impl {
  ShardSetInfo info;
  std::vector<int64_t> labels, ids, offsets;
  std::vector<ShardHandle> shards;       // the opened shards, in shard_indices order
  std::vector<int> shard_indices;        // their indices in the split's shard set
  int total_shards = 0;
  std::vector<uint8_t> preloaded;  // [size * image_bytes] when preloaded
  bool is_preloaded = false;
  int64_t image_bytes = 0;

  ~Impl() {
    h5::Hdf5Lock lock;
    for (auto& shard : shards) {
      shard.images.reset();
      shard.file.reset();
    }
  }
  // Caller holds the HDF5 lock.
  void read_locked(const ShardHandle& shard, int64_t local_row, uint8_t* dst) const;
};

void ShardSet::Impl::read_locked(const ShardHandle& shard, int64_t local_row, uint8_t* dst) const {
  const hsize_t start[4] = {static_cast<hsize_t>(local_row), 0, 0, 0};
  if (shard.direct_chunks) {
    uint32_t filters = 0;
    h5::check_status(H5Dread_chunk(shard.images.get(), H5P_DEFAULT, start, &filters, dst),
                     str(shard.path, ": cannot read image row ", local_row, "; the file may be truncated", kFix));
    return;
  }
  const hsize_t count[4] = {1, static_cast<hsize_t>(info.height), static_cast<hsize_t>(info.width),
                            static_cast<hsize_t>(info.channels)};
  h5::Id file_space = h5::checked(H5Dget_space(shard.images.get()), "H5Dget_space");
  h5::check_status(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr),
                   "H5Sselect_hyperslab");
  h5::Id memory_space = h5::checked(H5Screate_simple(4, count, nullptr), "H5Screate_simple");
  h5::check_status(H5Dread(shard.images.get(), H5T_NATIVE_UINT8, memory_space.get(), file_space.get(), H5P_DEFAULT,
                           dst),
                   str(shard.path, ": cannot read image row ", local_row, "; the file may be truncated", kFix));
}

ShardSet::ShardSet(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

int ShardSet::shard_count(const std::string& dir, const std::string& split) {
  const auto names = list_shard_files(dir, split);
  check(!names.empty(), "no shards of split '", split, "' in ", dir,
        "; run dml_prepare (launch/prepare_*.sh) or fix the data path");
  return parse_shard_file_name(names.front())->count;
}

ShardSet ShardSet::open(const std::string& dir, const std::string& split, int64_t preload_max_bytes,
                        const std::vector<int>& only_shards) {
  const auto names = list_shard_files(dir, split);
  check(!names.empty(), "no shards of split '", split, "' in ", dir, " (expected files ",
        shard_file_name(split, 0, 1).replace(split.size() + 1, 14, "NNNNN-of-MMMMM"),
        "); run dml_prepare (launch/prepare_*.sh) or fix the data path");
  const int count = parse_shard_file_name(names.front())->count;
  std::map<int, std::string> by_index;
  for (const auto& name : names) {
    const auto parsed = parse_shard_file_name(name);
    check(parsed->count == count, dir, ": split '", split, "' mixes shard sets of ", count, " and ", parsed->count,
          " shards (", names.front(), ", ", name, "); delete the stale set or re-create the split");
    by_index[parsed->index] = name;
  }
  check(count >= 1, dir, ": shard count 0 in ", names.front(), kFix);
  for (const auto& [index, name] : by_index) {
    check(index < count, dir, ": shard ", name, " has index ", index, " >= count ", count, kFix);
  }
  // The shards to open: all of them, or the given subset (the others may be absent, e.g. on another
  // node's local disk).
  std::vector<int> wanted = only_shards;
  if (wanted.empty()) {
    for (int i = 0; i < count; ++i) wanted.push_back(i);
  }
  for (int i : wanted) {
    check(i >= 0 && i < count, dir, ": shard index ", i, " of split '", split, "' is outside 0..", count - 1);
    check(by_index.count(i) == 1, dir, ": shard ", shard_file_name(split, i, count), " of split '", split,
          "' is missing (found ", by_index.size(), " of ", count,
          " files); copy the missing file or re-create the split with dml_prepare");
  }
  const int opened = static_cast<int>(wanted.size());

  auto impl = std::make_shared<Impl>();
  h5::Hdf5Lock lock;
  // Pass 1: headers of every shard, before reading any data.
  std::vector<ShardHeader> headers;
  impl->total_shards = count;
  impl->shard_indices = wanted;
  for (int i : wanted) {
    ShardHandle shard;
    shard.path = (fs::path(dir) / by_index[i]).string();
    shard.file = h5::checked(H5Fopen(shard.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                             str("cannot open shard ", shard.path, " as HDF5; the file is damaged or not a shard",
                                 kFix));
    headers.push_back(read_header(shard.file.get(), shard.path, split));
    if (headers.size() > 1) require_same(headers.front().info, headers.back().info, impl->shards.front().path, shard.path);
    shard.rows = headers.back().rows;
    impl->shards.push_back(std::move(shard));
  }
  impl->info = headers.front().info;
  impl->offsets.push_back(0);
  for (const auto& shard : impl->shards) impl->offsets.push_back(impl->offsets.back() + shard.rows);
  const int64_t size = impl->offsets.back();
  impl->info.size = size;
  impl->image_bytes = impl->info.height * impl->info.width * impl->info.channels;

  // Pass 2: labels and ids; labels in range; no class in two shards.
  impl->labels.resize(size);
  impl->ids.resize(size);
  std::vector<int> shard_of_class(impl->info.num_classes, -1);
  for (int s = 0; s < opened; ++s) {
    const ShardHandle& shard = impl->shards[s];
    const int64_t begin = impl->offsets[s];
    read_int64_dataset(shard.file.get(), "labels", impl->labels.data() + begin, shard.path);
    read_int64_dataset(shard.file.get(), "ids", impl->ids.data() + begin, shard.path);
    for (int64_t r = 0; r < shard.rows; ++r) {
      const int64_t label = impl->labels[begin + r];
      check(label >= 0 && label < impl->info.num_classes, shard.path, ": dataset labels row ", r, " is ", label,
            ", outside 0..num_classes-1 = 0..", impl->info.num_classes - 1, kFix);
      int& owner = shard_of_class[label];
      check(owner == -1 || owner == s, shard.path, ": class ", label, " also appears in ",
            owner >= 0 ? impl->shards[owner].path : "", "; a class must live wholly in one shard", kFix);
      owner = s;
    }
  }

  // Pass 3: images, preloaded or opened for reading on demand.
  impl->is_preloaded = size * impl->image_bytes <= preload_max_bytes;
  if (impl->is_preloaded) impl->preloaded.resize(static_cast<size_t>(size * impl->image_bytes));
  for (int s = 0; s < opened; ++s) {
    ShardHandle& shard = impl->shards[s];
    shard.images = h5::checked(H5Dopen2(shard.file.get(), "images", H5P_DEFAULT),
                               str(shard.path, ": cannot open dataset images"));
    if (impl->is_preloaded) {
      h5::check_status(H5Dread(shard.images.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                               impl->preloaded.data() + impl->offsets[s] * impl->image_bytes),
                       str(shard.path, ": cannot read dataset images; the file may be truncated", kFix));
      shard.images.reset();
      shard.file.reset();
    } else {
      shard.direct_chunks = chunks_are_images(shard.images.get(), impl->info);
    }
  }
  return ShardSet(std::move(impl));
}

const ShardSetInfo& ShardSet::info() const { return impl_->info; }
int64_t ShardSet::size() const { return impl_->info.size; }
int ShardSet::num_shards() const { return static_cast<int>(impl_->shards.size()); }
int ShardSet::total_shards() const { return impl_->total_shards; }
const std::vector<int>& ShardSet::shard_indices() const { return impl_->shard_indices; }
bool ShardSet::preloaded() const { return impl_->is_preloaded; }
const std::vector<int64_t>& ShardSet::labels() const { return impl_->labels; }
const std::vector<int64_t>& ShardSet::ids() const { return impl_->ids; }
const std::vector<int64_t>& ShardSet::shard_offsets() const { return impl_->offsets; }
int64_t ShardSet::image_bytes() const { return impl_->image_bytes; }

std::vector<std::vector<int64_t>> ShardSet::rows_by_class() const {
  std::vector<std::vector<int64_t>> rows(impl_->info.num_classes);
  for (int64_t r = 0; r < size(); ++r) rows[impl_->labels[r]].push_back(r);
  return rows;
}

void ShardSet::read_image(int64_t row, uint8_t* dst) const {
  const Impl& m = *impl_;
  check(row >= 0 && row < size(), "ShardSet::read_image: row ", row, " outside 0..", size() - 1, " of split '",
        m.info.split, "'");
  if (m.is_preloaded) {
    std::memcpy(dst, m.preloaded.data() + row * m.image_bytes, static_cast<size_t>(m.image_bytes));
    return;
  }
  const auto it = std::upper_bound(m.offsets.begin(), m.offsets.end(), row);
  const size_t s = static_cast<size_t>(it - m.offsets.begin()) - 1;
  h5::Hdf5Lock lock;
  m.read_locked(m.shards[s], row - m.offsets[s], dst);
}

at::Tensor ShardSet::read_images(const std::vector<int64_t>& rows) const {
  const ShardSetInfo& info = impl_->info;
  at::Tensor out = torch::empty({static_cast<int64_t>(rows.size()), info.height, info.width, info.channels},
                                torch::kUInt8);
  uint8_t* base = out.data_ptr<uint8_t>();
  for (size_t i = 0; i < rows.size(); ++i) read_image(rows[i], base + i * impl_->image_bytes);
  return out;
}

}  // namespace dml
