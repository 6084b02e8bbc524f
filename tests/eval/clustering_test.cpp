#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "dml/eval/clustering.h"
#include "dml/eval/retrieval_metrics.h"
#include "dml/util/counter_rng.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml {
namespace {

at::Tensor ints(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64); }

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

TEST(Nmi, MatchesNumpyOnGivenAssignments) {
  std::vector<int64_t> labels, clusters;
  const RngKey key{3, RngStream::kEval, 9};
  for (int i = 0; i < 200; ++i) {
    const int64_t label = 10 * static_cast<int64_t>(random_below(key, i, 0, 6)) - 20;  // values -20..30
    labels.push_back(label);
    // Clusters agree with labels 70% of the time, otherwise random: 0 < NMI < 1.
    clusters.push_back(random_uniform(key, i, 1) < 0.7 ? label / 10 + 2 : random_below(key, i, 2, 8));
  }
  // Independent NumPy NMI (dense contingency table, natural logs): tests/eval/python/nmi_reference.py.
  auto result = test::run_python_file("tests/eval/python/nmi_reference.py", {join(labels), join(clusters)});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const double expected = std::stod(result.output);
  EXPECT_GT(expected, 0.2);
  EXPECT_LT(expected, 0.95);
  EXPECT_NEAR(normalized_mutual_information(ints(labels), ints(clusters)), expected, 1e-12);
}

TEST(Nmi, HandValues) {
  // Identical partitions up to renaming: 1. Independent partitions (each label split evenly over
  // both clusters): I = 0. One group each: defined as 1.
  EXPECT_NEAR(normalized_mutual_information(ints({0, 0, 1, 1, 2}), ints({5, 5, 3, 3, 9})), 1.0, 1e-12);
  EXPECT_NEAR(normalized_mutual_information(ints({0, 0, 1, 1}), ints({0, 1, 0, 1})), 0.0, 1e-12);
  EXPECT_EQ(normalized_mutual_information(ints({4, 4, 4}), ints({1, 1, 1})), 1.0);
  // labels {0,0,1,1}, clusters {0,0,0,1}: I = (2/4)ln(4/3) + (1/4)ln(2/3) + (1/4)ln 2,
  // H(Y) = ln 2, H(C) = -(3/4)ln(3/4) - (1/4)ln(1/4).
  const double i = 0.5 * std::log(4.0 / 3) + 0.25 * std::log(2.0 / 3) + 0.25 * std::log(2.0);
  const double h = std::log(2.0) - 0.75 * std::log(0.75) - 0.25 * std::log(0.25);
  EXPECT_NEAR(normalized_mutual_information(ints({0, 0, 1, 1}), ints({0, 0, 0, 1})), 2 * i / h, 1e-12);
  EXPECT_THROW(normalized_mutual_information(ints({0, 1}), ints({0})), Error);
}

// Well-separated blobs: centre c at 20 * e_c (D = 8), noise in [-0.5, 0.5), items interleaved.
std::pair<at::Tensor, at::Tensor> blobs(int64_t classes, int64_t per_class, uint64_t seed) {
  const int64_t n = classes * per_class, d = 8;
  auto noise = random_uniform_tensor(RngKey{seed, RngStream::kInit, 0}, torch::arange(n, torch::kInt64), d) - 0.5;
  auto labels = torch::arange(n, torch::kInt64).remainder(classes);
  auto centers = torch::eye(d).narrow(0, 0, classes) * 20;
  return {(centers.index_select(0, labels) + noise).contiguous(), labels * 7 + 1};
}

TEST(KMeans, RecoversWellSeparatedClusters) {
  auto [x, y] = blobs(5, 40, 21);
  for (uint64_t seed : {0, 1, 2}) {
    auto assignments = kmeans_assignments(x, 5, seed);
    ASSERT_EQ(assignments.sizes(), (std::vector<int64_t>{200}));
    EXPECT_GE(assignments.min().item<int64_t>(), 0);
    EXPECT_LT(assignments.max().item<int64_t>(), 5);
    EXPECT_NEAR(normalized_mutual_information(y, assignments), 1.0, 1e-12) << "seed " << seed;
  }
  auto m = compute_retrieval_metrics(x, y, {1}, /*with_nmi=*/true, /*seed=*/123);
  EXPECT_NEAR(m.nmi, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(m.recall_at_k[0], 1.0);
}

TEST(KMeans, ResultIsAFixedPointOfLloydAndDeterministic) {
  // Uniform random points, no cluster structure: the result must still be converged, i.e. every
  // point's nearest centroid (recomputed here from the assignments) is its own cluster's.
  const int64_t n = 300, k = 6;
  auto x = random_uniform_tensor(RngKey{4, RngStream::kInit, 0}, torch::arange(n, torch::kInt64), 3);
  auto a = kmeans_assignments(x, k, 77);
  EXPECT_TRUE(torch::equal(a, kmeans_assignments(x, k, 77)));
  auto xd = x.to(torch::kFloat64);
  auto centroids = torch::zeros({k, 3}, torch::kFloat64);
  for (int64_t c = 0; c < k; ++c) {
    auto members = a.eq(c);
    ASSERT_GT(members.sum().item<int64_t>(), 0) << "empty cluster " << c;
    centroids[c] = xd.index({members}).mean(0);
  }
  auto d = (xd.unsqueeze(1) - centroids.unsqueeze(0)).pow(2).sum(2);  // [n, k], direct differences
  auto own = d.gather(1, a.unsqueeze(1)).squeeze(1);
  auto best = std::get<0>(d.min(1));
  EXPECT_LT((own - best).max().item<double>(), 1e-6);
  // A different seed is allowed to give another local optimum, but must use all k clusters here.
  EXPECT_EQ(std::get<0>(torch::_unique2(kmeans_assignments(x, k, 78))).size(0), k);
}

TEST(KMeans, DuplicatePointsAndErrors) {
  // 3 distinct points, each repeated: k = 3 must pick one of each (k-means++ never re-picks a
  // zero-distance point while others remain).
  auto x = torch::tensor({0.f, 0.f, 5.f, 5.f, 9.f, 9.f, 9.f}).reshape({7, 1});
  auto a = kmeans_assignments(x, 3, 5);
  EXPECT_NEAR(normalized_mutual_information(ints({0, 0, 1, 1, 2, 2, 2}), a), 1.0, 1e-12);
  EXPECT_THROW(kmeans_assignments(x, 8, 0), Error);
  EXPECT_THROW(kmeans_assignments(x, 0, 0), Error);
  EXPECT_THROW(kmeans_assignments(x.to(torch::kFloat64), 2, 0), Error);
}

}  // namespace
}  // namespace dml
