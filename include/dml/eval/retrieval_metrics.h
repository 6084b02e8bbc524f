#pragma once
// Retrieval metrics: Recall@K, P@1, R-Precision, MAP@R of a set of embeddings against itself (the
// test split is both query set and database, as in the reference; optionally with NMI), or of a
// query set against a separate gallery (the In-Shop protocol).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dml/eval/clustering.h"

namespace dml {

struct RetrievalMetrics {
  std::vector<int64_t> ks;          // as requested, in the caller's order
  std::vector<double> recall_at_k;  // [ks.size()]: fraction of queries with >= 1 same-class item among their K nearest
  // "A Metric Learning Reality Check" (Musgrave et al. 2020) definitions:
  double precision_at_1 = 0;  // fraction of queries whose nearest item has their class (over all queries: == Recall@1)
  double r_precision = 0;     // mean over queries with R > 0 of (#same-class among the R nearest) / R
  double map_at_r = 0;        // mean over queries with R > 0 of (1/R) sum_{i<=R} P@i * [item i has the class]
  double nmi = -1;            // k-means NMI; -1 when not computed
  int64_t num_queries = 0;    // same set: N (every item is a query); query/gallery: the number of queries
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
// with_nmi: k-means with k = number of distinct labels (see clustering.h), seeded by `seed`, with
// `kmeans_options` (by default 10 k-means++ starts, the lowest inertia kept).
// Throws dml::Error naming the argument on bad shapes, dtypes, devices, non-finite values or ks <= 0,
// OptionError on bad kmeans_options (when with_nmi).
RetrievalMetrics compute_retrieval_metrics(const at::Tensor& embeddings, const at::Tensor& labels,
                                           const std::vector<int64_t>& ks, bool with_nmi, uint64_t seed,
                                           int64_t block_rows = 0, const KMeansOptions& kmeans_options = {});

// Query set against a separate gallery (In-Shop Clothes: query and gallery are different images):
// query_embeddings float32 [Q, D], query_labels int64 [Q], gallery_embeddings float32 [G, D],
// gallery_labels int64 [G] (same D; CPU, finite; Q >= 1, 1 <= G < 2^32; labels any values).
// Every query's neighbours are all G gallery items (nothing is excluded: a gallery item equal to the
// query counts normally), ordered by the same distance as above, ties to the lower gallery index.
// R = number of gallery items with the query's label; queries with R = 0 count (as misses) in
// Recall@K and P@1 and are excluded from R-Precision and MAP@R. K > G is treated as G. num_queries
// = Q, nmi = -1. Blocks of `block_rows` queries as above (0 = under ~256 MB per block); the result
// does not depend on block_rows or the thread count. compute_retrieval_metrics without NMI is this
// with query = gallery = embeddings and each query's own item left out.
// Throws dml::Error naming the argument on bad shapes, dtypes, devices, non-finite values or ks <= 0.
RetrievalMetrics compute_query_gallery_metrics(const at::Tensor& query_embeddings, const at::Tensor& query_labels,
                                               const at::Tensor& gallery_embeddings,
                                               const at::Tensor& gallery_labels, const std::vector<int64_t>& ks,
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
