#pragma once
// Private to train/: how the Trainer opens its splits, all shards or, with rank-local shards, only
// this rank's [r*S/R, (r+1)*S/R), and what it tells the sampler and the log about them.
#include <cstdint>
#include <string>
#include <vector>

#include "dml/data/shard_set.h"
#include "dml/dist/communicator.h"
#include "dml/train/train_config.h"

namespace dml {

// Every shard of `split`, or this rank's shards when data.rank_local_shards (shard count a multiple
// of the ranks). A missing own shard names the rank and the host.
ShardSet open_split(const DataConfig& data, const std::string& split, Communicator& comm);

// [num_classes] the shard (set index) of each class of the opened shards; -1 for classes not seen.
std::vector<int64_t> classes_to_shards(const ShardSet& shards);

// Collective: rank 0 logs what every rank holds (about 1/R of each split with rank-local shards).
void log_resident_data(Communicator& comm, const ShardSet& train, const ShardSet& test);

}  // namespace dml
