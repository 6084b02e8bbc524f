#pragma once
// Embedding exports (format version 1): what dist_eval --export writes, for pictures and for use
// elsewhere. One HDF5 file that h5py reads directly:
//   datasets  embeddings float32 [N, D]; labels int64 [N] (the split's label space); ids int64 [N]
//             (source image ids, from the shards); rows int64 [N] (each image's row in the split:
//             the shards' images concatenated in shard-index order)
//             query/gallery mode adds query_embeddings, query_labels, query_ids, query_rows for the
//             query split (the root datasets are then the gallery)
//   attributes format = "dml-embeddings", format_version = 1, model, embed_dim, checkpoint,
//             data_path, split, num_classes, class_names (when the shards have them), and
//             query_split in query/gallery mode.
#include <cstdint>
#include <string>
#include <vector>

namespace dml {

constexpr int64_t kEmbeddingExportVersion = 1;

struct ExportedSet {
  int64_t dim = 0;
  std::vector<float> embeddings;  // [N * dim], row-major
  std::vector<int64_t> labels, ids, rows;  // [N] each
};

struct EmbeddingExport {
  ExportedSet gallery;
  bool has_query = false;
  ExportedSet query;
  std::string model, checkpoint, data_path, split, query_split;
  int64_t embed_dim = 0, num_classes = 0;
  std::vector<std::string> class_names;  // may be empty
};

// Writes `path` atomically (temporary file, then rename). An existing `path` is an error unless
// `overwrite`; either way nothing is left half-written. Throws dml::Error naming the file.
void write_embedding_export(const std::string& path, const EmbeddingExport& data, bool overwrite);

}  // namespace dml
