#include <torch/torch.h>

#include <cmath>

#include "dml/eval/clustering.h"
#include "dml/util/error.h"

namespace dml {
namespace {

// Group sizes of a labeling and each item's group index (0..groups-1).
std::pair<at::Tensor, at::Tensor> groups_of(const at::Tensor& labels) {
  auto unique = torch::_unique2(labels, /*sorted=*/true, /*return_inverse=*/true, /*return_counts=*/true);
  return {std::get<1>(unique), std::get<2>(unique)};
}

double entropy(const at::Tensor& counts, double n) {
  auto c = counts.to(torch::kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  double h = 0;
  for (int64_t i = 0; i < c.numel(); ++i) h -= p[i] / n * std::log(p[i] / n);
  return h;
}

}  // namespace

double normalized_mutual_information(const at::Tensor& labels, const at::Tensor& assignments) {
  check(labels.defined() && assignments.defined() && labels.dim() == 1 && assignments.dim() == 1 &&
            labels.size(0) == assignments.size(0) && labels.size(0) >= 1,
        "normalized_mutual_information: labels and assignments must both be [N], N >= 1");
  check(labels.scalar_type() == torch::kInt64 && assignments.scalar_type() == torch::kInt64 &&
            labels.device().is_cpu() && assignments.device().is_cpu(),
        "normalized_mutual_information: labels and assignments must be int64 on the CPU");
  const double n = static_cast<double>(labels.size(0));
  auto [label_group, label_counts] = groups_of(labels);
  auto [cluster_group, cluster_counts] = groups_of(assignments);
  const int64_t num_clusters = cluster_counts.size(0);
  // Non-empty cells of the contingency table, without allocating all groups x clusters of it.
  auto cells = torch::_unique2(label_group * num_clusters + cluster_group, /*sorted=*/true,
                               /*return_inverse=*/false, /*return_counts=*/true);
  auto cell_ids = std::get<0>(cells).contiguous();
  auto cell_counts = std::get<2>(cells).to(torch::kFloat64).contiguous();
  auto a = label_counts.to(torch::kFloat64).contiguous();
  auto b = cluster_counts.to(torch::kFloat64).contiguous();
  const int64_t* id = cell_ids.data_ptr<int64_t>();
  const double* nij = cell_counts.data_ptr<double>();
  const double* ai = a.data_ptr<double>();
  const double* bj = b.data_ptr<double>();
  double mutual = 0;
  for (int64_t c = 0; c < cell_ids.numel(); ++c) {
    const double ab = ai[id[c] / num_clusters] * bj[id[c] % num_clusters];
    mutual += nij[c] / n * std::log(n * nij[c] / ab);
  }
  const double h = entropy(label_counts, n) + entropy(cluster_counts, n);
  if (h <= 0) return 1.0;
  return 2.0 * mutual / h;
}

}  // namespace dml
