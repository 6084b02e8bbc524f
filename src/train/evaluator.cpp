#include "dml/train/evaluator.h"

#include <chrono>
#include <set>
#include <thread>

#include "dml/util/error.h"

namespace dml {
namespace {

ImageSource restrict_to(ImageSource source, const std::vector<int64_t>& rows) {
  if (static_cast<int64_t>(rows.size()) == source.size()) return source;
  std::vector<int64_t> labels(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) labels[i] = source.labels[static_cast<size_t>(rows[i])];
  auto read = source.read;
  source.read = [read, rows](int64_t row, uint8_t* dst) { read(rows.at(static_cast<size_t>(row)), dst); };
  source.labels = std::move(labels);
  return source;
}

void check_classes(const ImageSource& source, const char* what) {
  const std::set<int64_t> classes(source.labels.begin(), source.labels.end());
  check(classes.size() >= 2, "evaluation: the ", what, " holds ", classes.size(), " class among its ", source.size(),
        " evaluated images; retrieval metrics need at least 2 classes (use a split with several classes, or "
        "evaluate more images)");
}

// First row of batch b of n rows in batches of bs, clamped to n.
int64_t batch_start(int64_t b, int64_t bs, int64_t n) { return std::min(n, b * bs); }

}  // namespace

std::vector<int64_t> evaluated_rows(int64_t n, int64_t max_images) {
  const int64_t count = (max_images <= 0 || max_images >= n) ? n : max_images;
  std::vector<int64_t> rows(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) rows[static_cast<size_t>(i)] = i * n / count;
  return rows;
}

int64_t evaluation_batch_size(int64_t training_batch_size) { return std::max<int64_t>(training_batch_size, 64); }

void validate_eval_config(const EvalConfig& config) {
  check_option(!config.ks.empty(), "ks", "the Recall@K list is empty; name at least one K");
  for (int64_t k : config.ks) check_option(k >= 1, "ks", "K = ", k, " in the Recall@K list; every K must be >= 1");
  check_option(config.batch_size >= 1, "batch_size", "evaluation batch size is ", config.batch_size, "; use >= 1");
  check_option(config.max_images >= 0, "max_images", "max_images is ", config.max_images, "; use 0 for all images");
  check_option(config.kmeans_restarts >= 1, "kmeans_restarts", "k-means restarts: ", config.kmeans_restarts,
               "; use at least 1");
}

std::vector<int64_t> Evaluator::gather_labels(const std::vector<int64_t>& local) const {
  auto on_comm = [&](torch::Tensor t) {
    return comm_.cuda_device() >= 0 ? t.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm_.cuda_device()))) : t;
  };
  const torch::Tensor counts = comm_.all_gather(on_comm(torch::tensor({static_cast<int64_t>(local.size())}))).cpu();
  const int64_t max_count = counts.max().item<int64_t>();
  torch::Tensor padded = torch::full({max_count}, int64_t{-1}, torch::kInt64);
  if (!local.empty()) padded.narrow(0, 0, static_cast<int64_t>(local.size())).copy_(torch::tensor(local, torch::kInt64));
  const torch::Tensor all = comm_.all_gather(on_comm(padded)).cpu();
  std::vector<int64_t> out;
  for (int64_t r = 0; r < comm_.world_size(); ++r) {
    const auto* p = all.data_ptr<int64_t>() + r * max_count;
    out.insert(out.end(), p, p + counts[r].item<int64_t>());
  }
  return out;
}

Evaluator::Evaluator(Communicator& comm, ImageSource gallery, EvalConfig config, const ImageSource* query)
    : comm_(comm), config_(std::move(config)) {
  validate_eval_config(config_);
  gallery_rows_ = evaluated_rows(gallery.size(), config_.max_images);
  gallery_ = restrict_to(std::move(gallery), gallery_rows_);
  evaluated_labels_ = config_.rank_local ? gather_labels(gallery_.labels) : gallery_.labels;
  ImageSource all_labels;  // for the checks: the whole evaluated set's labels
  all_labels.labels = evaluated_labels_;
  check(!(config_.rank_local && query != nullptr), "evaluation: rank-local shards support the same-set protocol only");
  check_classes(all_labels, query != nullptr ? "gallery" : "evaluated split");
  const int64_t max_k = *std::max_element(config_.ks.begin(), config_.ks.end());
  if (query != nullptr) {
    has_query_ = true;
    query_rows_ = evaluated_rows(query->size(), config_.max_images);
    query_ = restrict_to(*query, query_rows_);
    check(query_.size() >= 1, "evaluation: the query split is empty");
    check_option(max_k <= gallery_.size(), "ks", "Recall@", max_k, " needs at least ", max_k,
                 " gallery images, but the gallery has ", gallery_.size(), "; use smaller K values");
  } else {
    check_option(max_k <= all_labels.size() - 1, "ks", "Recall@", max_k, " needs at least ", max_k,
                 " other images per query, but the evaluated split has ", all_labels.size(),
                 " images; use smaller K values or evaluate more images");
  }
}

torch::Tensor Evaluator::embed(const ImageSource& source, ReplicaGroup& replicas) {
  const int64_t n = source.size(), bs = config_.batch_size;
  const int64_t per_rank = replicas.size(), world = comm_.world_size();
  // Shared source: the batches of all n rows are split over all world * per_rank replicas. Rank-local
  // source: this rank's batches over its own replicas. Replica j of this rank embeds rows
  // [begin(first + j), begin(first + j + 1)), whole batches, contiguous in row order.
  const int64_t batches = (n + bs - 1) / bs;
  const int64_t total = config_.rank_local ? per_rank : per_rank * world;
  auto begin = [&](int64_t q) { return batch_start(q * batches / total, bs, n); };
  const int64_t first_replica = config_.rank_local ? 0 : comm_.rank() * per_rank;
  // Rows of every rank, for the padded gather: computed for a shared source, exchanged when local.
  std::vector<int64_t> rank_rows(static_cast<size_t>(world));
  if (config_.rank_local) {
    torch::Tensor count = torch::tensor({n});
    if (comm_.cuda_device() >= 0) count = count.to(replicas.device(0));
    const torch::Tensor counts = comm_.all_gather(count).cpu();
    for (int64_t r = 0; r < world; ++r) rank_rows[static_cast<size_t>(r)] = counts[r].item<int64_t>();
  } else {
    for (int64_t r = 0; r < world; ++r) {
      rank_rows[static_cast<size_t>(r)] = begin((r + 1) * per_rank) - begin(r * per_rank);
    }
  }
  const int64_t max_rows = *std::max_element(rank_rows.begin(), rank_rows.end());

  AugmentOptions augment;
  augment.crop_size = config_.crop_size;
  augment.train = false;
  augment.out_channels = config_.out_channels;
  std::vector<torch::Tensor> parts(static_cast<size_t>(per_rank));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(per_rank));
  auto run_replica = [&](int64_t j) {
    try {
      torch::NoGradGuard no_grad;  // thread-local: every replica thread sets its own
      const int64_t b = begin(first_replica + j), e = begin(first_replica + j + 1);
      const torch::Device device = replicas.device(j);
      std::vector<torch::Tensor> out;
      if (e > b) {
        EvalLoader loader(source, b, e, bs, augment, config_.workers, config_.prefetch, device.is_cuda());
        Batch batch;
        while (loader.next(batch)) {
          out.push_back(replicas.replica(j)->forward(normalize_images(batch.images, device)).to(torch::kFloat32).to(torch::kCPU));
        }
      }
      parts[static_cast<size_t>(j)] = out.empty() ? torch::Tensor() : torch::cat(out);
    } catch (...) {
      errors[static_cast<size_t>(j)] = std::current_exception();
    }
  };
  if (per_rank == 1) {
    run_replica(0);
  } else {
    std::vector<std::thread> threads;
    for (int64_t j = 0; j < per_rank; ++j) threads.emplace_back(run_replica, j);
    for (auto& t : threads) t.join();
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }

  // The embedding size, also on a rank without rows (more replicas than batches): the model says it.
  const int64_t dim = replicas.primary()->options().embed_dim;
  torch::Tensor padded = torch::zeros({max_rows, dim}, torch::kFloat32);
  int64_t filled = 0;
  for (const auto& part : parts) {
    if (!part.defined()) continue;
    padded.narrow(0, filled, part.size(0)).copy_(part);
    filled += part.size(0);
  }
  if (comm_.cuda_device() >= 0) padded = padded.to(replicas.device(0));  // the communicator's tensors live on the GPU
  const torch::Tensor gathered = comm_.all_gather(padded).to(torch::kCPU);
  std::vector<torch::Tensor> pieces;
  int64_t expected = 0;
  for (int64_t r = 0; r < world; ++r) {
    pieces.push_back(gathered.narrow(0, r * max_rows, rank_rows[static_cast<size_t>(r)]));
    expected += rank_rows[static_cast<size_t>(r)];
  }
  const torch::Tensor embeddings = torch::cat(pieces);
  check(embeddings.size(0) == expected, "evaluation gathered ", embeddings.size(0), " embeddings for ", expected,
        " images");
  return embeddings;
}

Evaluation Evaluator::evaluate(ReplicaGroup& replicas) {
  replicas.train(false);
  Evaluation result;
  const auto start = std::chrono::steady_clock::now();
  result.embeddings = embed(gallery_, replicas);
  if (has_query_) result.query_embeddings = embed(query_, replicas);
  result.embed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (comm_.rank() != 0) return Evaluation{};
  const torch::Tensor gallery_labels = torch::tensor(evaluated_labels_, torch::kInt64);
  if (has_query_) {
    result.metrics = compute_query_gallery_metrics(result.query_embeddings, torch::tensor(query_.labels, torch::kInt64),
                                                   result.embeddings, gallery_labels, config_.ks);
  } else {
    KMeansOptions kmeans;
    kmeans.restarts = config_.kmeans_restarts;
    result.metrics = compute_retrieval_metrics(result.embeddings, gallery_labels, config_.ks, config_.nmi, config_.seed,
                                               /*block_rows=*/0, kmeans);
  }
  return result;
}

}  // namespace dml
