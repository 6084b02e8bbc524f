#pragma once
// Bridges the shard reader (area data) to the input pipeline (area pipeline).
#include <string>

#include "dml/data/shard_set.h"
#include "dml/pipeline/image_source.h"

namespace dml {

// An ImageSource reading from `shards` (shared, thread-safe reads).
ImageSource make_image_source(const ShardSet& shards);

// Fails with the fix when --data-path is missing, or is a raw CUB-200-2011 / IDX directory that
// still needs dml_prepare (the message prints the exact command).
void check_data_path(const std::string& data_path);

}  // namespace dml
