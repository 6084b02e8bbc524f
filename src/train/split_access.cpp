#include "train/split_access.h"

#include <unistd.h>

#include <torch/torch.h>

#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {

// A split: every shard, or with rank-local shards only this rank's [r*S/R, (r+1)*S/R). A missing own
// shard names the rank and the host, since on a cluster it usually means staging missed a node.
ShardSet open_split(const DataConfig& data, const std::string& split, Communicator& comm) {
  if (!data.rank_local_shards) return ShardSet::open(data.data_path, split, data.preload_max_bytes);
  const int ranks = comm.world_size(), rank = comm.rank();
  try {
    const int shards = ShardSet::shard_count(data.data_path, split);
    check_option(shards % ranks == 0, "rank_local_shards", "rank-local shards: split '", split, "' has ", shards,
                 " shards, not a multiple of the ", ranks, " ranks; re-create it with dml_prepare --shards N*", ranks);
    std::vector<int> own;
    for (int s = rank * shards / ranks; s < (rank + 1) * shards / ranks; ++s) own.push_back(s);
    return ShardSet::open(data.data_path, split, data.preload_max_bytes, own);
  } catch (const OptionError&) {
    throw;
  } catch (const Error& e) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    throw Error(str("rank ", rank, " on host ", host, ": ", e.what()));
  }
}

std::vector<int64_t> classes_to_shards(const ShardSet& shards) {
  std::vector<int64_t> shard_of_class(static_cast<size_t>(shards.info().num_classes), -1);
  const auto& offsets = shards.shard_offsets();
  for (int j = 0; j < shards.num_shards(); ++j) {
    for (int64_t row = offsets[static_cast<size_t>(j)]; row < offsets[static_cast<size_t>(j) + 1]; ++row) {
      shard_of_class[static_cast<size_t>(shards.labels()[static_cast<size_t>(row)])] = shards.shard_indices()[static_cast<size_t>(j)];
    }
  }
  return shard_of_class;
}

// Rank 0 logs what every rank holds: with rank-local shards each holds about 1/R of each split.
void log_resident_data(Communicator& comm, const ShardSet& train, const ShardSet& test) {
  torch::Tensor mine = torch::tensor({train.size(), train.size() * train.image_bytes(), test.size(),
                                      test.size() * test.image_bytes(), int64_t{train.shard_indices().front()},
                                      int64_t{train.shard_indices().back()}});
  if (comm.cuda_device() >= 0) mine = mine.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.cuda_device())));
  const torch::Tensor all = comm.all_gather(mine).cpu().view({comm.world_size(), 6});
  std::string line = "rank-local shards:";
  for (int64_t r = 0; r < comm.world_size(); ++r) {
    const auto v = all[r];
    line += str(" rank ", r, " holds train shards ", v[4].item<int64_t>(), "..", v[5].item<int64_t>(), " (",
                v[0].item<int64_t>(), " images, ", v[1].item<int64_t>() >> 20, " MB) and ", v[2].item<int64_t>(),
                " test images (", v[3].item<int64_t>() >> 20, " MB);");
  }
  log::info("data", line);
}

}  // namespace dml
