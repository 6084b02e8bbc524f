#include <torch/torch.h>

#include <algorithm>

#include "dml/eval/clustering.h"
#include "dml/util/counter_rng.h"
#include "dml/util/error.h"

namespace dml {
namespace {

constexpr int64_t kScoreBudgetBytes = int64_t{64} << 20;

// Index of the nearest centre for every point, int64 [N]; ties go to the lower centre index
// (argmin returns the first minimum). |x|^2 is the same for all centres of a row, so it is left out.
at::Tensor nearest_centers(const at::Tensor& x, const at::Tensor& centers) {
  const int64_t n = x.size(0), k = centers.size(0);
  const int64_t block = std::max<int64_t>(1, kScoreBudgetBytes / (4 * k));
  auto center_sq = (centers * centers).sum(1).unsqueeze(0);
  auto assignments = torch::empty({n}, torch::kInt64);
  for (int64_t begin = 0; begin < n; begin += block) {
    const int64_t rows = std::min(block, n - begin);
    auto scores = center_sq.expand({rows, k}).clone();
    scores.addmm_(x.narrow(0, begin, rows), centers.t(), /*beta=*/1, /*alpha=*/-2);
    assignments.narrow(0, begin, rows).copy_(scores.argmin(1));
  }
  return assignments;
}

// Squared distances of all points to one point, float64 [N] (direct differences: exact zeros for
// duplicates, which k-means++ must never pick again while others remain).
at::Tensor squared_distances_to(const at::Tensor& x, int64_t index) {
  return (x - x[index]).pow(2).sum(1).to(torch::kFloat64);
}

// k-means++ seeding: indices of the k initial centres.
at::Tensor kmeans_plus_plus(const at::Tensor& x, int64_t k, uint64_t seed) {
  const int64_t n = x.size(0);
  const RngKey key{seed, RngStream::kEval, 0};
  auto centers = torch::empty({k, x.size(1)}, x.options());
  int64_t pick = random_below(key, 0, 0, static_cast<uint32_t>(n));
  centers[0].copy_(x[pick]);
  auto min_sq = squared_distances_to(x, pick);
  std::vector<double> cumulative(n);
  for (int64_t c = 1; c < k; ++c) {
    const double* w = min_sq.data_ptr<double>();
    double total = 0;
    for (int64_t i = 0; i < n; ++i) cumulative[i] = (total += w[i]);
    if (total <= 0) {
      pick = random_below(key, c, 0, static_cast<uint32_t>(n));
    } else {
      const double target = random_uniform(key, c, 0) * total;
      pick = std::upper_bound(cumulative.begin(), cumulative.end(), target) - cumulative.begin();
      // Rounding can put target at the very end; take the last item of non-zero weight.
      while (pick >= n || w[pick] <= 0) pick = (pick >= n ? n - 1 : pick - 1);
    }
    centers[c].copy_(x[pick]);
    min_sq = torch::minimum(min_sq, squared_distances_to(x, pick));
  }
  return centers;
}

}  // namespace

at::Tensor kmeans_assignments(const at::Tensor& points, int64_t k, uint64_t seed, int64_t max_iterations) {
  torch::NoGradGuard no_grad;
  check(points.defined() && points.dim() == 2 && points.scalar_type() == torch::kFloat32 && points.device().is_cpu(),
        "kmeans_assignments: points must be float32 [N, D] on the CPU");
  const int64_t n = points.size(0);
  check(n >= 1 && n < (int64_t{1} << 32), "kmeans_assignments: need 1 <= N < 2^32 points, got ", n);
  check(k >= 1 && k <= n, "kmeans_assignments: k = ", k, " with ", n, " points; need 1 <= k <= N");
  check(max_iterations >= 1, "kmeans_assignments: max_iterations = ", max_iterations, "; need >= 1");
  auto x = points.contiguous();
  auto x_double = x.to(torch::kFloat64);
  auto centers = kmeans_plus_plus(x, k, seed);
  auto assignments = torch::full({n}, -1, torch::kInt64);
  for (int64_t round = 0; round < max_iterations; ++round) {
    auto next = nearest_centers(x, centers);
    const bool changed = !torch::equal(next, assignments);
    assignments = next;
    if (!changed || round + 1 == max_iterations) break;
    // Sums in float64, accumulated in point order (deterministic), then the float32 means.
    auto sums = torch::zeros({k, x.size(1)}, torch::kFloat64).index_add_(0, assignments, x_double);
    auto counts = torch::bincount(assignments, /*weights=*/{}, /*minlength=*/k);
    auto means = (sums / counts.clamp_min(1).unsqueeze(1).to(torch::kFloat64)).to(torch::kFloat32);
    centers = torch::where(counts.gt(0).unsqueeze(1), means, centers);
  }
  return assignments;
}

}  // namespace dml
