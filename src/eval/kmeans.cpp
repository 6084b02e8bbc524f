#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "dml/eval/clustering.h"
#include "dml/util/counter_rng.h"
#include "dml/util/error.h"

namespace dml {
namespace {

// One block of the assignment step holds [rows, k] float32 scores; rows are chosen so that the
// block stays under this budget (and the block size depends on k only, never on the thread count).
constexpr int64_t kScoreBudgetBytes = int64_t{256} << 20;
// Points per task of the O(N D) loops (k-means++ updates, inertia).
constexpr int64_t kPointGrain = 512;

// Squared Euclidean distance of two float32 rows of length d by direct differences, summed in a
// fixed order (8 lanes over the row, then the lanes pairwise, then the tail): exactly 0 for equal
// rows, and the same value whichever thread computes it. The lanes let the compiler vectorise it.
inline float squared_distance(const float* a, const float* b, int64_t d) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    for (int l = 0; l < 8; ++l) {
      const float t = a[j + l] - b[j + l];
      lane[l] += t * t;
    }
  }
  float tail = 0;
  for (; j < d; ++j) {
    const float t = a[j] - b[j];
    tail += t * t;
  }
  return (((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]))) + tail;
}

// Buffers of the assignment step, allocated once per kmeans() call and reused by every round.
class Assigner {
 public:
  Assigner(int64_t n, int64_t k)
      : block_(std::min(n, std::max<int64_t>(1, kScoreBudgetBytes / (4 * k)))), scores_(torch::empty({block_, k})) {}

  // Index of the nearest centre for every point into `out` (int64 [N]); ties go to the lower
  // centre index (argmin returns the first minimum). |x|^2 is the same for all centres of a row,
  // so the scores are |c|^2 - 2 x.c, one GEMM per block of points.
  void nearest(const at::Tensor& x, const at::Tensor& centers, at::Tensor& out) {
    const int64_t n = x.size(0);
    const auto center_sq = (centers * centers).sum(1).unsqueeze(0);
    const auto centers_t = centers.t();
    for (int64_t begin = 0; begin < n; begin += block_) {
      const int64_t rows = std::min(block_, n - begin);
      auto scores = scores_.narrow(0, 0, rows);
      at::addmm_out(scores, center_sq, x.narrow(0, begin, rows), centers_t, /*beta=*/1, /*alpha=*/-2);
      auto target = out.narrow(0, begin, rows);
      at::argmin_out(target, scores, /*dim=*/1);
    }
  }

 private:
  int64_t block_;
  at::Tensor scores_;
};

// k-means++ seeding (see clustering.h): the k initial centres, float32 [k, D]. The running
// minimum squared distance of every point to the chosen centres is updated with one new centre at
// a time, O(N D) per centre, by direct differences (exact zeros for duplicates of chosen centres,
// which must never be picked again while other points remain).
at::Tensor kmeans_plus_plus(const at::Tensor& x, int64_t k, const RngKey& key) {
  const int64_t n = x.size(0), d = x.size(1);
  const float* px = x.data_ptr<float>();
  auto centers = torch::empty({k, d}, x.options());
  float* pc = centers.data_ptr<float>();
  std::vector<double> min_sq(static_cast<size_t>(n), std::numeric_limits<double>::infinity());
  std::vector<double> cumulative(static_cast<size_t>(n));
  int64_t pick = random_below(key, 0, 0, static_cast<uint32_t>(n));
  for (int64_t c = 0;; ++c) {
    const float* center = pc + c * d;
    std::copy(px + pick * d, px + (pick + 1) * d, pc + c * d);
    if (c + 1 == k) break;
    at::parallel_for(0, n, kPointGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        min_sq[i] = std::min(min_sq[i], static_cast<double>(squared_distance(px + i * d, center, d)));
      }
    });
    double total = 0;
    for (int64_t i = 0; i < n; ++i) cumulative[i] = (total += min_sq[i]);
    const int64_t next = c + 1;
    if (total <= 0) {
      pick = random_below(key, next, 0, static_cast<uint32_t>(n));
    } else {
      const double target = random_uniform(key, next, 0) * total;
      pick = std::upper_bound(cumulative.begin(), cumulative.end(), target) - cumulative.begin();
      // Rounding can put target at the very end; take the last item of non-zero weight.
      while (pick >= n || min_sq[pick] <= 0) pick = (pick >= n ? n - 1 : pick - 1);
    }
  }
  return centers;
}

// Sum over points of the squared distance to the assigned centre: per point in float32 by direct
// differences (in parallel), summed in float64 in point order.
double inertia_of(const at::Tensor& x, const at::Tensor& centers, const at::Tensor& assignments) {
  const int64_t n = x.size(0), d = x.size(1);
  const float* px = x.data_ptr<float>();
  const float* pc = centers.data_ptr<float>();
  const int64_t* a = assignments.data_ptr<int64_t>();
  std::vector<float> per_point(static_cast<size_t>(n));
  at::parallel_for(0, n, kPointGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) per_point[i] = squared_distance(px + i * d, pc + a[i] * d, d);
  });
  double total = 0;
  for (float v : per_point) total += v;
  return total;
}

struct Start {
  at::Tensor assignments, centers;
  double inertia = 0;
  int64_t iterations = 0;
};

// One start: k-means++ then Lloyd. x is float32 [N, D] contiguous, x_double its float64 copy.
Start lloyd(const at::Tensor& x, const at::Tensor& x_double, int64_t k, const RngKey& key, int64_t max_iterations,
            Assigner& assigner) {
  const int64_t n = x.size(0);
  Start s;
  s.centers = kmeans_plus_plus(x, k, key);
  s.assignments = torch::full({n}, -1, torch::kInt64);
  auto next = torch::empty({n}, torch::kInt64);
  for (int64_t round = 0; round < max_iterations; ++round) {
    assigner.nearest(x, s.centers, next);
    ++s.iterations;
    const bool changed = !torch::equal(next, s.assignments);
    std::swap(next, s.assignments);
    if (!changed || round + 1 == max_iterations) break;
    // Sums in float64, accumulated in point order (index_add_ on the CPU adds the rows serially,
    // so the result does not depend on the thread count), then the float32 means.
    auto sums = torch::zeros({k, x.size(1)}, torch::kFloat64).index_add_(0, s.assignments, x_double);
    auto counts = torch::bincount(s.assignments, /*weights=*/{}, /*minlength=*/k);
    auto means = (sums / counts.clamp_min(1).unsqueeze(1).to(torch::kFloat64)).to(torch::kFloat32);
    s.centers = torch::where(counts.gt(0).unsqueeze(1), means, s.centers).contiguous();
  }
  s.inertia = inertia_of(x, s.centers, s.assignments);
  return s;
}

}  // namespace

void validate_kmeans_options(const KMeansOptions& options) {
  check_option(options.restarts >= 1, "restarts", "k-means restarts = ", options.restarts, "; need >= 1");
  check_option(options.max_iterations >= 1, "max_iterations", "k-means max_iterations = ", options.max_iterations,
               "; need >= 1");
  check_option(options.first_restart >= 0 && options.first_restart <= (int64_t{1} << 32) - options.restarts,
               "first_restart", "k-means first_restart = ", options.first_restart, " with ", options.restarts,
               " restarts; need 0 <= first_restart and first_restart + restarts <= 2^32");
}

KMeansResult kmeans(const at::Tensor& points, int64_t k, uint64_t seed, const KMeansOptions& options) {
  torch::NoGradGuard no_grad;
  check(points.defined() && points.dim() == 2 && points.scalar_type() == torch::kFloat32 && points.device().is_cpu(),
        "kmeans: points must be float32 [N, D] on the CPU");
  const int64_t n = points.size(0);
  check(n >= 1 && n < (int64_t{1} << 32), "kmeans: need 1 <= N < 2^32 points, got ", n);
  check(k >= 1 && k <= n, "kmeans: k = ", k, " with ", n, " points; need 1 <= k <= N");
  validate_kmeans_options(options);
  auto x = points.contiguous();
  auto x_double = x.to(torch::kFloat64);
  Assigner assigner(n, k);
  KMeansResult result;
  for (int64_t r = 0; r < options.restarts; ++r) {
    const RngKey key{seed, RngStream::kEval, static_cast<uint64_t>(options.first_restart + r)};
    Start s = lloyd(x, x_double, k, key, options.max_iterations, assigner);
    result.restart_inertias.push_back(s.inertia);
    result.restart_iterations.push_back(s.iterations);
    if (r == 0 || s.inertia < result.inertia) {  // strict: the earliest of equal starts stays
      result.assignments = std::move(s.assignments);
      result.centers = std::move(s.centers);
      result.inertia = s.inertia;
      result.best_restart = r;
    }
  }
  return result;
}

at::Tensor kmeans_assignments(const at::Tensor& points, int64_t k, uint64_t seed, const KMeansOptions& options) {
  return kmeans(points, k, seed, options).assignments;
}

}  // namespace dml
