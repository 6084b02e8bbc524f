#include "dml/train/evaluator.h"

#include "dml/util/error.h"

namespace dml {
namespace {
// An evenly spaced subset of `max_images` rows (all rows when max_images is 0 or too large), so a
// quick evaluation still sees every class in proportion.
ImageSource evenly_spaced_subset(ImageSource source, int64_t max_images) {
  const int64_t n = source.size();
  if (max_images <= 0 || max_images >= n) return source;
  std::vector<int64_t> rows(max_images);
  std::vector<int64_t> labels(max_images);
  for (int64_t i = 0; i < max_images; ++i) {
    rows[i] = i * n / max_images;
    labels[i] = source.labels[rows[i]];
  }
  auto read = source.read;
  source.read = [read, rows](int64_t row, uint8_t* dst) { read(rows.at(row), dst); };
  source.labels = std::move(labels);
  return source;
}
}  // namespace

void validate_eval_config(const EvalConfig& config) {
  check_option(!config.ks.empty(), "ks", "the Recall@K list is empty; name at least one K");
  for (int64_t k : config.ks) check_option(k >= 1, "ks", "K = ", k, " in the Recall@K list; every K must be >= 1");
  check_option(config.batch_size >= 1, "batch_size", "evaluation batch size is ", config.batch_size, "; use >= 1");
  check_option(config.max_images >= 0, "max_images", "max_images is ", config.max_images, "; use 0 for all images");
}

Evaluator::Evaluator(Communicator& comm, ImageSource test_source, EvalConfig config)
    : comm_(comm), source_(evenly_spaced_subset(std::move(test_source), config.max_images)), config_(std::move(config)) {
  validate_eval_config(config_);
}

torch::Tensor Evaluator::embed_rows(EmbeddingNet& net, const torch::Device& device, int64_t begin, int64_t end) {
  std::vector<torch::Tensor> parts;
  if (end > begin) {
    AugmentOptions augment;
    augment.crop_size = config_.crop_size;
    augment.train = false;
    augment.out_channels = config_.out_channels;
    EvalLoader loader(source_, begin, end, config_.batch_size, augment, config_.workers, config_.prefetch,
                      /*pin_memory=*/device.is_cuda());
    Batch batch;
    while (loader.next(batch)) {
      parts.push_back(net->forward(normalize_images(batch.images, device)).to(torch::kFloat32).to(torch::kCPU));
    }
  }
  if (parts.empty()) return torch::zeros({0, 0});
  return torch::cat(parts);
}

RetrievalMetrics Evaluator::evaluate(EmbeddingNet& net, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  net->eval();
  const int64_t n = source_.size();
  const int64_t world = comm_.world_size();
  const int64_t rank = comm_.rank();
  const int64_t begin = rank * n / world, end = (rank + 1) * n / world;
  const int64_t max_rows = (n + world - 1) / world;
  torch::Tensor local = embed_rows(net, device, begin, end);
  // A rank with no rows (more ranks than images) learns D from a one-image forward, no collective.
  const int64_t dim = local.numel() > 0
                          ? local.size(1)
                          : net->forward(torch::zeros({1, config_.out_channels, config_.crop_size, config_.crop_size},
                                                      device)).size(1);
  torch::Tensor padded = torch::zeros({max_rows, dim}, torch::kFloat32);
  if (end > begin) padded.narrow(0, 0, end - begin).copy_(local);
  const bool on_device = comm_.cuda_device() >= 0;  // the communicator's tensors live on the GPU
  torch::Tensor sendbuf = on_device ? padded.to(device) : padded;
  torch::Tensor gathered = comm_.all_gather(sendbuf).to(torch::kCPU);
  if (rank != 0) return RetrievalMetrics{};
  std::vector<torch::Tensor> pieces;
  for (int64_t r = 0; r < world; ++r) {
    const int64_t b = r * n / world, e = (r + 1) * n / world;
    pieces.push_back(gathered.narrow(0, r * max_rows, e - b));
  }
  const torch::Tensor embeddings = torch::cat(pieces);
  const torch::Tensor labels = torch::tensor(source_.labels, torch::kInt64);
  check(embeddings.size(0) == n, "evaluation gathered ", embeddings.size(0), " embeddings for ", n, " images");
  return compute_retrieval_metrics(embeddings, labels, config_.ks, config_.nmi, config_.seed);
}

}  // namespace dml
