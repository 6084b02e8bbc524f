#pragma once
// Retrieval metrics of a set of embeddings against itself (the test split is both query set and
// database, as in the reference): Recall@K, P@1, R-Precision, MAP@R and, optionally, NMI.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace at {
class Tensor;
}

namespace dml {

struct RetrievalMetrics {
  std::vector<int64_t> ks;          // as requested, in the caller's order
  std::vector<double> recall_at_k;  // [ks.size()]: fraction of queries with >= 1 same-class item among their K nearest
  // "A Metric Learning Reality Check" (Musgrave et al. 2020) definitions:
  double precision_at_1 = 0;  // fraction of queries whose nearest item has their class (over all queries: == Recall@1)
  double r_precision = 0;     // mean over queries with R > 0 of (#same-class among the R nearest) / R
  double map_at_r = 0;        // mean over queries with R > 0 of (1/R) sum_{i<=R} P@i * [item i has the class]
  double nmi = -1;            // k-means NMI; -1 when not computed
  int64_t num_queries = 0;    // N: every item is a query
};

// embeddings: float32 [N, D], CPU, finite, N >= 2; labels: int64 [N] (any values, CPU).
// Distances are Euclidean, computed as sqrt(max(|q|^2 + |x|^2 - 2 q.x, 0)) in float32. Each query's
// neighbours are all items except the query itself (duplicates of its embedding count normally),
// ordered by distance, ties broken by lower item index. R = number of other items with the query's
// label; queries with R = 0 count (as misses) in Recall@K and P@1 and are excluded from R-Precision and
// MAP@R (both are 0 when no query has R > 0). K > N - 1 is treated as N - 1.
// Work is done in blocks of `block_rows` queries (0 = chosen so that one block's buffers stay
// under ~256 MB; N = 60000, D = 128 stays well under 1 GB in all), using torch's intra-op threads.
// The result does not depend on block_rows or the thread count.
// with_nmi: k-means with k = number of distinct labels (see clustering.h), seeded by `seed`.
// Throws dml::Error naming the argument on bad shapes, dtypes, devices, non-finite values or ks <= 0.
RetrievalMetrics compute_retrieval_metrics(const at::Tensor& embeddings, const at::Tensor& labels,
                                           const std::vector<int64_t>& ks, bool with_nmi, uint64_t seed,
                                           int64_t block_rows = 0);

// A plain-text table, one column per named result, rows Recall@K (union of all columns' ks,
// ascending), P@1, R-Precision, MAP@R, NMI; values as fractions with 4 decimals, "-" where a column
// lacks a value (K not computed, NMI not computed). Ends with a newline.
std::string format_metrics_table(const std::vector<std::pair<std::string, RetrievalMetrics>>& columns);

// The metrics as JSON object fields, without braces, in this order:
// "recall@<K>":v for each K (in m.ks order),"precision@1":v,"r_precision":v,"map@r":v,"nmi":v
// (nmi is null when not computed). Numbers are printed with 10 significant digits.
std::string metrics_json_fields(const RetrievalMetrics& m);

}  // namespace dml
