#include "dml/train/checkpoint_evaluation.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "dml/data/embedding_export.h"
#include "dml/data/shard_set.h"
#include "dml/dist/broadcast_module.h"
#include "dml/train/checkpoint.h"
#include "dml/train/devices.h"
#include "dml/train/replica_group.h"
#include "dml/train/shard_image_source.h"
#include "dml/util/atomic_file.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {
namespace {

void check_output_path(const std::string& path, bool overwrite, const char* what) {
  if (path.empty()) return;
  check(overwrite || !std::filesystem::exists(path), what, " ", path,
        " exists; choose another path or pass --overwrite to replace it");
  const auto parent = std::filesystem::path(path).parent_path();
  check(parent.empty() || std::filesystem::is_directory(parent), what, " ", path, ": directory ", parent.string(),
        " does not exist; create it first");
}

ExportedSet exported(const torch::Tensor& embeddings, const ShardSet& shards, const std::vector<int64_t>& rows) {
  ExportedSet set;
  const torch::Tensor e = embeddings.contiguous();
  set.dim = e.size(1);
  set.embeddings.assign(e.data_ptr<float>(), e.data_ptr<float>() + e.numel());
  for (int64_t row : rows) {
    set.rows.push_back(row);
    set.labels.push_back(shards.labels()[static_cast<size_t>(row)]);
    set.ids.push_back(shards.ids()[static_cast<size_t>(row)]);
  }
  return set;
}

}  // namespace

CheckpointEvaluationResult evaluate_checkpoint(const CheckpointEvaluationConfig& c, Communicator& comm) {
  check_output_path(c.metrics_json, c.overwrite, "metrics file");
  check_output_path(c.export_path, c.overwrite, "export");
  check_replica_devices(c.devices, comm);
  check_data_path(c.data.data_path);
  const ShardSet gallery = ShardSet::open(c.data.data_path, c.split, c.data.preload_max_bytes);
  std::optional<ShardSet> query;
  if (!c.query_split.empty()) query.emplace(ShardSet::open(c.data.data_path, c.query_split, c.data.preload_max_bytes));
  const ImageSource gallery_source = make_image_source(gallery);
  std::optional<ImageSource> query_source;
  if (query) query_source = make_image_source(*query);
  Evaluator evaluator(comm, gallery_source, c.eval, query_source ? &*query_source : nullptr);

  // Every replica holds the checkpoint's weights; rank 0's are broadcast, so ranks that read the file
  // from different copies still evaluate one model.
  ReplicaGroup replicas(c.model, /*freeze_bn=*/false, /*seed=*/0, c.devices);
  load_inference_model(c.checkpoint, replicas.primary());
  broadcast_module(comm, *replicas.primary(), /*root=*/0);
  replicas.copy_primary_to_replicas();

  const auto start = std::chrono::steady_clock::now();
  const Evaluation evaluation = evaluator.evaluate(replicas);
  CheckpointEvaluationResult result;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.images = evaluator.num_images() + evaluator.num_query_images();
  result.embed_seconds = evaluation.embed_seconds;
  result.images_per_sec = static_cast<double>(result.images) / std::max(result.embed_seconds, 1e-9);
  if (comm.rank() == 0) {
    result.metrics = evaluation.metrics;
    if (!c.metrics_json.empty()) {
      write_file_atomically(c.metrics_json, [&](const std::string& tmp) {
        std::ofstream out(tmp);
        out << "{\"checkpoint\": \"" << c.checkpoint << "\", \"split\": \"" << c.split << "\", \"query_split\": \""
            << c.query_split << "\", \"images\": " << result.images << ", " << metrics_json_fields(evaluation.metrics)
            << "}\n";
        check(out.good(), "metrics file ", c.metrics_json, ": cannot write (disk full?)");
      });
    }
    if (!c.export_path.empty()) {
      EmbeddingExport data;
      data.gallery = exported(evaluation.embeddings, gallery, evaluator.rows());
      if (query) {
        data.has_query = true;
        data.query = exported(evaluation.query_embeddings, *query, evaluator.query_rows());
        data.query_split = c.query_split;
      }
      data.model = c.model.name;
      data.embed_dim = c.model.embed_dim;
      data.checkpoint = c.checkpoint;
      data.data_path = c.data.data_path;
      data.split = c.split;
      data.num_classes = gallery.info().num_classes;
      data.class_names = gallery.info().class_names;
      write_embedding_export(c.export_path, data, c.overwrite);
      log::info("eval", str("wrote ", data.gallery.labels.size(), " embeddings to ", c.export_path));
    }
  }
  comm.barrier();
  return result;
}

}  // namespace dml
