#include "dml/eval/retrieval_metrics.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "dml/eval/clustering.h"
#include "dml/util/error.h"

namespace dml {
namespace {

constexpr int64_t kBlockBudgetBytes = int64_t{256} << 20;

// Per-query results, filled row by row; summed in query order at the end so that the totals do
// not depend on the block size or on how threads split the rows.
struct QueryResults {
  std::vector<int64_t> first_hit;  // rank (0-based) of the first same-class neighbour; -1 if none seen
  std::vector<double> r_precision;
  std::vector<double> average_precision;
};

void check_inputs(const at::Tensor& embeddings, const at::Tensor& labels, const std::vector<int64_t>& ks) {
  check(embeddings.defined() && embeddings.dim() == 2, "compute_retrieval_metrics: embeddings must be [N, D]");
  check(embeddings.scalar_type() == torch::kFloat32, "compute_retrieval_metrics: embeddings have dtype ",
        embeddings.scalar_type(), "; pass float32 (call .to(torch::kFloat32))");
  check(embeddings.device().is_cpu(), "compute_retrieval_metrics: embeddings are on ", embeddings.device(),
        "; copy them to the CPU first");
  check(labels.defined() && labels.dim() == 1 && labels.size(0) == embeddings.size(0),
        "compute_retrieval_metrics: labels must be [N] with N = ", embeddings.size(0), " (the embeddings' rows)");
  check(labels.scalar_type() == torch::kInt64 && labels.device().is_cpu(),
        "compute_retrieval_metrics: labels must be int64 on the CPU");
  check(embeddings.size(0) >= 2 && embeddings.size(0) < (int64_t{1} << 32),
        "compute_retrieval_metrics: need 2 <= N < 2^32 embeddings, got ", embeddings.size(0));
  check(torch::isfinite(embeddings).all().item<bool>(),
        "compute_retrieval_metrics: embeddings contain NaN or Inf; the model diverged (lower --lr)");
  for (int64_t k : ks) check(k >= 1, "compute_retrieval_metrics: K = ", k, " in the recall list; use K >= 1");
}

// Neighbour lists of queries [begin, begin + rows) as keys (distance bits << 32 | item index),
// ascending: the first `k` of each row, [rows, k] int64. Distances are non-negative floats, whose
// bit patterns order like the values, so one integer top-k sorts by distance then index, exactly.
at::Tensor nearest_keys(const at::Tensor& x, const at::Tensor& sq_norms, int64_t begin, int64_t rows, int64_t k) {
  const int64_t n = x.size(0);
  auto query = x.narrow(0, begin, rows);
  auto dist = sq_norms.narrow(0, begin, rows).unsqueeze(1) + sq_norms.unsqueeze(0);
  dist.addmm_(query, x.t(), /*beta=*/1, /*alpha=*/-2);
  dist.clamp_min_(0).sqrt_();
  dist.narrow(1, begin, rows).diagonal().fill_(std::numeric_limits<float>::infinity());  // the query itself
  auto keys = dist.view(torch::kInt32).to(torch::kInt64);
  dist = at::Tensor();
  keys.mul_(int64_t{1} << 32).add_(torch::arange(n, torch::kInt64).unsqueeze(0));
  return std::get<0>(keys.topk(k, /*dim=*/1, /*largest=*/false, /*sorted=*/true));
}

}  // namespace

RetrievalMetrics compute_retrieval_metrics(const at::Tensor& embeddings, const at::Tensor& labels,
                                           const std::vector<int64_t>& ks, bool with_nmi, uint64_t seed,
                                           int64_t block_rows) {
  torch::NoGradGuard no_grad;
  check_inputs(embeddings, labels, ks);
  const int64_t n = embeddings.size(0);
  auto x = embeddings.contiguous();
  auto y = labels.contiguous();
  const int64_t* label = y.data_ptr<int64_t>();

  // R per query: the size of its class minus itself.
  auto unique = torch::_unique2(y, /*sorted=*/true, /*return_inverse=*/true, /*return_counts=*/true);
  auto r_tensor = (std::get<2>(unique).index_select(0, std::get<1>(unique)) - 1).contiguous();
  const int64_t* r_of = r_tensor.data_ptr<int64_t>();
  const int64_t num_classes = std::get<0>(unique).size(0);

  int64_t max_k = 1;
  for (int64_t k : ks) max_k = std::max(max_k, std::min(k, n - 1));
  const int64_t max_r = r_tensor.max().item<int64_t>();
  if (block_rows <= 0) {
    // Per row: float distances and int64 keys over N items (+ top-k's copy), and the kept lists.
    const int64_t row_bytes = n * 24 + std::max(max_k, max_r) * 16;
    block_rows = std::max<int64_t>(1, kBlockBudgetBytes / row_bytes);
  }
  block_rows = std::min(block_rows, n);

  auto sq_norms = (x * x).sum(1);
  QueryResults q{std::vector<int64_t>(n, -1), std::vector<double>(n, 0), std::vector<double>(n, 0)};
  for (int64_t begin = 0; begin < n; begin += block_rows) {
    const int64_t rows = std::min(block_rows, n - begin);
    int64_t block_max_r = 0;
    for (int64_t i = begin; i < begin + rows; ++i) block_max_r = std::max(block_max_r, r_of[i]);
    const int64_t k = std::max(max_k, block_max_r);
    auto top = nearest_keys(x, sq_norms, begin, rows, k).contiguous();
    const int64_t* keys = top.data_ptr<int64_t>();
    at::parallel_for(0, rows, 64, [&](int64_t row_begin, int64_t row_end) {
      for (int64_t row = row_begin; row < row_end; ++row) {
        const int64_t i = begin + row;
        const int64_t r = r_of[i];
        const int64_t* list = keys + row * k;
        int64_t hits = 0, hits_in_r = 0, first_hit = -1;
        double precision_sum = 0;
        for (int64_t j = 0; j < k && (j < r || (first_hit < 0 && j < max_k)); ++j) {
          if (label[list[j] & 0xffffffffLL] != label[i]) continue;
          ++hits;
          if (first_hit < 0) first_hit = j;
          if (j < r) {
            hits_in_r = hits;
            precision_sum += static_cast<double>(hits) / static_cast<double>(j + 1);
          }
        }
        q.first_hit[i] = first_hit;
        if (r > 0) {
          q.r_precision[i] = static_cast<double>(hits_in_r) / static_cast<double>(r);
          q.average_precision[i] = precision_sum / static_cast<double>(r);
        }
      }
    });
  }

  RetrievalMetrics m;
  m.ks = ks;
  m.num_queries = n;
  int64_t with_r = 0, at_1 = 0;
  double r_precision_sum = 0, ap_sum = 0;
  std::vector<int64_t> recall_hits(ks.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    at_1 += q.first_hit[i] == 0;
    for (size_t j = 0; j < ks.size(); ++j) {
      recall_hits[j] += q.first_hit[i] >= 0 && q.first_hit[i] < std::min(ks[j], n - 1);
    }
    if (r_of[i] > 0) {
      ++with_r;
      r_precision_sum += q.r_precision[i];
      ap_sum += q.average_precision[i];
    }
  }
  for (int64_t hits : recall_hits) m.recall_at_k.push_back(static_cast<double>(hits) / static_cast<double>(n));
  m.precision_at_1 = static_cast<double>(at_1) / static_cast<double>(n);
  if (with_r > 0) {
    m.r_precision = r_precision_sum / static_cast<double>(with_r);
    m.map_at_r = ap_sum / static_cast<double>(with_r);
  }
  if (with_nmi) m.nmi = normalized_mutual_information(y, kmeans_assignments(x, num_classes, seed));
  return m;
}

}  // namespace dml
