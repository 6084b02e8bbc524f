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

// `what` names the function, `name` the argument in messages.
void check_embeddings(const char* what, const char* name, const at::Tensor& x) {
  check(x.defined() && x.dim() == 2, what, ": ", name, " must be [N, D]");
  check(x.scalar_type() == torch::kFloat32, what, ": ", name, " have dtype ", x.scalar_type(),
        "; pass float32 (call .to(torch::kFloat32))");
  check(x.device().is_cpu(), what, ": ", name, " are on ", x.device(), "; copy them to the CPU first");
}

void check_labels(const char* what, const char* name, const at::Tensor& labels, const char* rows_of,
                  const at::Tensor& x) {
  check(labels.defined() && labels.dim() == 1 && labels.size(0) == x.size(0), what, ": ", name,
        " must be [N] with N = ", x.size(0), " (the ", rows_of, "' rows)");
  check(labels.scalar_type() == torch::kInt64 && labels.device().is_cpu(), what, ": ", name,
        " must be int64 on the CPU");
}

void check_finite(const char* what, const char* name, const at::Tensor& x) {
  check(torch::isfinite(x).all().item<bool>(), what, ": ", name,
        " contain NaN or Inf; the model diverged (lower --lr)");
}

void check_ks(const char* what, const std::vector<int64_t>& ks) {
  for (int64_t k : ks) check(k >= 1, what, ": K = ", k, " in the recall list; use K >= 1");
}

// R per query, int64 [Q]: the number of gallery items with the query's label, minus the query
// itself when query and gallery are the same set.
at::Tensor relevant_counts(const at::Tensor& query_labels, const at::Tensor& gallery_labels, bool same_set) {
  auto unique = torch::_unique2(gallery_labels, /*sorted=*/true, /*return_inverse=*/false, /*return_counts=*/true);
  const auto& values = std::get<0>(unique);
  const auto& counts = std::get<2>(unique);
  auto position = torch::searchsorted(values, query_labels).clamp_max(values.size(0) - 1);
  auto found = values.index_select(0, position).eq(query_labels);
  auto r = torch::where(found, counts.index_select(0, position), torch::zeros_like(position));
  return (same_set ? r - 1 : r).contiguous();
}

// Neighbour lists of queries [begin, begin + rows) among the gallery as keys (distance bits << 32 |
// gallery index), ascending: the first `k` of each row, [rows, k] int64. Distances are non-negative
// floats, whose bit patterns order like the values, so one integer top-k sorts by distance then
// index, exactly. same_set: query i is gallery item i, left out (at infinity, behind the others).
at::Tensor nearest_keys(const at::Tensor& query, const at::Tensor& query_sq, const at::Tensor& gallery,
                        const at::Tensor& gallery_sq, bool same_set, int64_t begin, int64_t rows, int64_t k) {
  const int64_t g = gallery.size(0);
  auto block = query.narrow(0, begin, rows);
  auto dist = query_sq.narrow(0, begin, rows).unsqueeze(1) + gallery_sq.unsqueeze(0);
  dist.addmm_(block, gallery.t(), /*beta=*/1, /*alpha=*/-2);
  dist.clamp_min_(0).sqrt_();
  if (same_set) dist.narrow(1, begin, rows).diagonal().fill_(std::numeric_limits<float>::infinity());
  auto keys = dist.view(torch::kInt32).to(torch::kInt64);
  dist = at::Tensor();
  keys.mul_(int64_t{1} << 32).add_(torch::arange(g, torch::kInt64).unsqueeze(0));
  return std::get<0>(keys.topk(k, /*dim=*/1, /*largest=*/false, /*sorted=*/true));
}

// The metrics of every query against the gallery (inputs checked, contiguous). same_set: query and
// gallery are the same tensors and each query's own item is not a candidate. nmi stays -1.
RetrievalMetrics rank_queries(const at::Tensor& query, const at::Tensor& query_labels, const at::Tensor& gallery,
                              const at::Tensor& gallery_labels, bool same_set, const std::vector<int64_t>& ks,
                              int64_t block_rows) {
  const int64_t nq = query.size(0);
  const int64_t candidates = gallery.size(0) - (same_set ? 1 : 0);
  const int64_t* label = query_labels.data_ptr<int64_t>();
  const int64_t* gallery_label = gallery_labels.data_ptr<int64_t>();
  auto r_tensor = relevant_counts(query_labels, gallery_labels, same_set);
  const int64_t* r_of = r_tensor.data_ptr<int64_t>();

  int64_t max_k = 1;
  for (int64_t k : ks) max_k = std::max(max_k, std::min(k, candidates));
  const int64_t max_r = r_tensor.max().item<int64_t>();
  if (block_rows <= 0) {
    // Per row: float distances and int64 keys over the gallery (+ top-k's copy), and the kept lists.
    const int64_t row_bytes = gallery.size(0) * 24 + std::max(max_k, max_r) * 16;
    block_rows = std::max<int64_t>(1, kBlockBudgetBytes / row_bytes);
  }
  block_rows = std::min(block_rows, nq);

  auto query_sq = (query * query).sum(1);
  auto gallery_sq = same_set ? query_sq : (gallery * gallery).sum(1);
  QueryResults q{std::vector<int64_t>(nq, -1), std::vector<double>(nq, 0), std::vector<double>(nq, 0)};
  for (int64_t begin = 0; begin < nq; begin += block_rows) {
    const int64_t rows = std::min(block_rows, nq - begin);
    int64_t block_max_r = 0;
    for (int64_t i = begin; i < begin + rows; ++i) block_max_r = std::max(block_max_r, r_of[i]);
    const int64_t k = std::max(max_k, block_max_r);
    auto top = nearest_keys(query, query_sq, gallery, gallery_sq, same_set, begin, rows, k).contiguous();
    const int64_t* keys = top.data_ptr<int64_t>();
    at::parallel_for(0, rows, 64, [&](int64_t row_begin, int64_t row_end) {
      for (int64_t row = row_begin; row < row_end; ++row) {
        const int64_t i = begin + row;
        const int64_t r = r_of[i];
        const int64_t* list = keys + row * k;
        int64_t hits = 0, hits_in_r = 0, first_hit = -1;
        double precision_sum = 0;
        for (int64_t j = 0; j < k && (j < r || (first_hit < 0 && j < max_k)); ++j) {
          if (gallery_label[list[j] & 0xffffffffLL] != label[i]) continue;
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
  m.num_queries = nq;
  int64_t with_r = 0, at_1 = 0;
  double r_precision_sum = 0, ap_sum = 0;
  std::vector<int64_t> recall_hits(ks.size(), 0);
  for (int64_t i = 0; i < nq; ++i) {
    at_1 += q.first_hit[i] == 0;
    for (size_t j = 0; j < ks.size(); ++j) {
      recall_hits[j] += q.first_hit[i] >= 0 && q.first_hit[i] < std::min(ks[j], candidates);
    }
    if (r_of[i] > 0) {
      ++with_r;
      r_precision_sum += q.r_precision[i];
      ap_sum += q.average_precision[i];
    }
  }
  for (int64_t hits : recall_hits) m.recall_at_k.push_back(static_cast<double>(hits) / static_cast<double>(nq));
  m.precision_at_1 = static_cast<double>(at_1) / static_cast<double>(nq);
  if (with_r > 0) {
    m.r_precision = r_precision_sum / static_cast<double>(with_r);
    m.map_at_r = ap_sum / static_cast<double>(with_r);
  }
  return m;
}

}  // namespace

RetrievalMetrics compute_retrieval_metrics(const at::Tensor& embeddings, const at::Tensor& labels,
                                           const std::vector<int64_t>& ks, bool with_nmi, uint64_t seed,
                                           int64_t block_rows, const KMeansOptions& kmeans_options) {
  torch::NoGradGuard no_grad;
  constexpr const char* what = "compute_retrieval_metrics";
  check_embeddings(what, "embeddings", embeddings);
  check_labels(what, "labels", labels, "embeddings", embeddings);
  check(embeddings.size(0) >= 2 && embeddings.size(0) < (int64_t{1} << 32), what,
        ": need 2 <= N < 2^32 embeddings, got ", embeddings.size(0));
  check_finite(what, "embeddings", embeddings);
  check_ks(what, ks);
  if (with_nmi) validate_kmeans_options(kmeans_options);  // before the ranking's work
  auto x = embeddings.contiguous();
  auto y = labels.contiguous();
  RetrievalMetrics m = rank_queries(x, y, x, y, /*same_set=*/true, ks, block_rows);
  if (with_nmi) {
    const int64_t num_classes = std::get<0>(torch::_unique2(y)).size(0);
    m.nmi = normalized_mutual_information(y, kmeans_assignments(x, num_classes, seed, kmeans_options));
  }
  return m;
}

RetrievalMetrics compute_query_gallery_metrics(const at::Tensor& query_embeddings, const at::Tensor& query_labels,
                                               const at::Tensor& gallery_embeddings,
                                               const at::Tensor& gallery_labels, const std::vector<int64_t>& ks,
                                               int64_t block_rows) {
  torch::NoGradGuard no_grad;
  constexpr const char* what = "compute_query_gallery_metrics";
  check_embeddings(what, "query_embeddings", query_embeddings);
  check_embeddings(what, "gallery_embeddings", gallery_embeddings);
  check(query_embeddings.size(1) == gallery_embeddings.size(1), what, ": query_embeddings have ",
        query_embeddings.size(1), " dimensions and gallery_embeddings ", gallery_embeddings.size(1),
        "; both must come from the same model");
  check_labels(what, "query_labels", query_labels, "query_embeddings", query_embeddings);
  check_labels(what, "gallery_labels", gallery_labels, "gallery_embeddings", gallery_embeddings);
  check(query_embeddings.size(0) >= 1, what, ": need at least one query, got 0");
  check(gallery_embeddings.size(0) >= 1 && gallery_embeddings.size(0) < (int64_t{1} << 32), what,
        ": need 1 <= G < 2^32 gallery embeddings, got ", gallery_embeddings.size(0));
  check_finite(what, "query_embeddings", query_embeddings);
  check_finite(what, "gallery_embeddings", gallery_embeddings);
  check_ks(what, ks);
  return rank_queries(query_embeddings.contiguous(), query_labels.contiguous(), gallery_embeddings.contiguous(),
                      gallery_labels.contiguous(), /*same_set=*/false, ks, block_rows);
}

}  // namespace dml
