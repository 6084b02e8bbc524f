#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
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

// The lowest restart rule needs a case where single starts often end in bad local optima: a 4 x 4
// grid of square blobs (side 2, 8 apart, 25 points each, items interleaved) into k = 16 clusters.
// The true partition is the global optimum (NMI 1); a k-means++ start that puts two centres into
// one blob leaves another centre spanning two blobs, a Lloyd fixed point of much higher inertia.
constexpr int64_t kGrid = 4, kPerBlob = 25;
// With this seed, starts 0-4, 8 and 9 of 10 end in bad optima, 5-7 in the global one (checked below).
constexpr uint64_t kGridSeed = 7;

std::pair<at::Tensor, at::Tensor> grid_blobs() {
  const int64_t k = kGrid * kGrid, n = k * kPerBlob;
  auto labels = torch::arange(n, torch::kInt64).remainder(k);
  auto corner = torch::stack({labels.div(kGrid, "floor"), labels.remainder(kGrid)}, 1).to(torch::kFloat32) * 8;
  auto noise = random_uniform_tensor(RngKey{5, RngStream::kInit, 0}, torch::arange(n, torch::kInt64), 2) * 2 - 1;
  return {(corner + noise).contiguous(), labels};
}

// Independent of kmeans(): every cluster's float64 centroid and the sum of squared differences.
double inertia_of(const at::Tensor& x, const at::Tensor& assignments) {
  auto xd = x.to(torch::kFloat64);
  double total = 0;
  auto ids = std::get<0>(torch::_unique2(assignments)).contiguous();
  for (int64_t j = 0; j < ids.size(0); ++j) {
    auto members = xd.index({assignments.eq(ids[j])});
    total += (members - members.mean(0)).pow(2).sum().item<double>();
  }
  return total;
}

KMeansOptions starts(int64_t restarts, int64_t first_restart = 0) {
  KMeansOptions o;
  o.restarts = restarts;
  o.first_restart = first_restart;
  return o;
}

TEST(KMeans, HandCaseInertiaAndResultFields) {
  // Three pairs on a line, k = 3: the best of 10 starts is the pairs, centres at their middles,
  // inertia 3 * (0.5^2 + 0.5^2) = 1.5 exactly.
  auto x = torch::tensor({0.f, 1.f, 10.f, 11.f, 20.f, 21.f}).reshape({6, 1});
  auto r = kmeans(x, 3, 9);
  EXPECT_EQ(r.inertia, 1.5);
  EXPECT_NEAR(normalized_mutual_information(ints({0, 0, 1, 1, 2, 2}), r.assignments), 1.0, 1e-12);
  ASSERT_EQ(r.centers.sizes(), (std::vector<int64_t>{3, 1}));
  EXPECT_TRUE(torch::equal(std::get<0>(r.centers.flatten().sort()), torch::tensor({0.5f, 10.5f, 20.5f})));
  EXPECT_TRUE(torch::equal(r.centers.index_select(0, r.assignments).flatten(),
                           torch::tensor({0.5f, 0.5f, 10.5f, 10.5f, 20.5f, 20.5f})));
  ASSERT_EQ(r.restart_inertias.size(), 10u);
  ASSERT_EQ(r.restart_iterations.size(), 10u);
  EXPECT_EQ(r.restart_inertias[r.best_restart], 1.5);
  EXPECT_EQ(*std::min_element(r.restart_inertias.begin(), r.restart_inertias.end()), 1.5);
  // The earliest of the lowest is kept.
  EXPECT_EQ(std::find(r.restart_inertias.begin(), r.restart_inertias.end(), 1.5) - r.restart_inertias.begin(),
            r.best_restart);
  for (int64_t rounds : r.restart_iterations) {
    EXPECT_GE(rounds, 1);
    EXPECT_LE(rounds, 100);
  }
  // One round only: the k-means++ centres themselves, no update.
  KMeansOptions one_round;
  one_round.max_iterations = 1;
  for (int64_t rounds : kmeans(x, 3, 9, one_round).restart_iterations) EXPECT_EQ(rounds, 1);
  EXPECT_TRUE(torch::equal(kmeans_assignments(x, 3, 9), r.assignments));
}

TEST(KMeans, RestartsKeepTheLowestInertiaStart) {
  auto [x, y] = grid_blobs();
  const int64_t k = kGrid * kGrid;
  auto ten = kmeans(x, k, kGridSeed);  // the default: 10 starts
  ASSERT_EQ(ten.restart_inertias.size(), 10u);
  // Every start alone ({restarts = 1, first_restart = r}), with the inertia recomputed here.
  std::vector<double> single;
  std::vector<at::Tensor> single_assignments;
  for (int64_t r = 0; r < 10; ++r) {
    auto one = kmeans(x, k, kGridSeed, starts(1, r));
    EXPECT_EQ(one.restart_inertias[0], ten.restart_inertias[r]) << "start " << r << " differs when run alone";
    EXPECT_NEAR(one.inertia, inertia_of(x, one.assignments), 1e-4 * one.inertia) << "start " << r;
    single.push_back(inertia_of(x, one.assignments));
    single_assignments.push_back(one.assignments);
  }
  const double best = *std::min_element(single.begin(), single.end());
  const double worst = *std::max_element(single.begin(), single.end());
  // The case tells the rules apart: the first, the last and the worst start are all far from the best.
  EXPECT_GT(single.front(), 1.2 * best);
  EXPECT_GT(single.back(), 1.2 * best);
  EXPECT_GT(worst, 1.2 * best);
  EXPECT_LT(normalized_mutual_information(y, single_assignments.front()), 0.99);
  // The kept start is the lowest one (several starts reach the same optimum: the earliest of them).
  EXPECT_LE(inertia_of(x, ten.assignments), best * (1 + 1e-12));
  EXPECT_EQ(ten.inertia, *std::min_element(ten.restart_inertias.begin(), ten.restart_inertias.end()));
  EXPECT_EQ(ten.best_restart, std::find(ten.restart_inertias.begin(), ten.restart_inertias.end(), ten.inertia) -
                                  ten.restart_inertias.begin());
  EXPECT_EQ(ten.best_restart, 5);
  EXPECT_TRUE(torch::equal(ten.assignments, single_assignments[ten.best_restart]));
  EXPECT_NEAR(normalized_mutual_information(y, ten.assignments), 1.0, 1e-12);
  // compute_retrieval_metrics runs 10 starts unless told otherwise.
  EXPECT_NEAR(compute_retrieval_metrics(x, y, {1}, /*with_nmi=*/true, kGridSeed).nmi, 1.0, 1e-12);
  EXPECT_EQ(compute_retrieval_metrics(x, y, {1}, true, kGridSeed, 0, starts(1)).nmi,
            normalized_mutual_information(y, single_assignments.front()));
}

// Points as a text matrix for the Python references: %.9g (float32 round trip), then the label.
void write_points(const std::string& path, const at::Tensor& x, const at::Tensor& y) {
  std::ofstream out(path);
  auto xc = x.contiguous();
  const float* p = xc.data_ptr<float>();
  for (int64_t i = 0; i < x.size(0); ++i) {
    char buffer[32];
    for (int64_t j = 0; j < x.size(1); ++j) {
      std::snprintf(buffer, sizeof(buffer), "%.9g ", p[i * x.size(1) + j]);
      out << buffer;
    }
    out << y[i].item<int64_t>() << "\n";
  }
}

struct SklearnResult {
  double inertia, nmi, nmi_of_dml, inertia_of_dml, single_start_inertia;
};

SklearnResult sklearn_kmeans(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& assignments) {
  test::TempDir dir;
  write_points(dir.file("data.txt"), x, y);
  std::vector<int64_t> a(assignments.data_ptr<int64_t>(), assignments.data_ptr<int64_t>() + assignments.numel());
  auto result = test::run_python_file("tests/eval/python/kmeans_reference.py",
                                      {dir.file("data.txt"), std::to_string(k), "10", "0", join(a)});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  SklearnResult r{};
  std::istringstream in(result.output);
  EXPECT_TRUE(in >> r.inertia >> r.nmi >> r.nmi_of_dml >> r.inertia_of_dml >> r.single_start_inertia) << result.output;
  return r;
}

TEST(KMeans, GridMatchesScikitLearn) {
  // scikit-learn's KMeans(n_init=10, init="k-means++") finds the global optimum of the grid; so must
  // dml's 10 starts, while one dml start (the first) stays far from it.
  auto [x, y] = grid_blobs();
  const int64_t k = kGrid * kGrid;
  auto r = kmeans(x, k, kGridSeed);
  auto first = kmeans(x, k, kGridSeed, starts(1));
  auto sk = sklearn_kmeans(x, y, k, r.assignments);
  EXPECT_NEAR(sk.nmi, 1.0, 1e-12);
  EXPECT_NEAR(r.inertia, sk.inertia, 1e-5 * sk.inertia);
  EXPECT_NEAR(sk.inertia_of_dml, sk.inertia, 1e-9 * sk.inertia);
  EXPECT_NEAR(normalized_mutual_information(y, r.assignments), sk.nmi, 1e-9);
  EXPECT_NEAR(normalized_mutual_information(y, r.assignments), sk.nmi_of_dml, 1e-12);
  // The tolerances above are ones that a single start breaks.
  EXPECT_GT(first.inertia, 1.2 * sk.inertia);
  EXPECT_LT(normalized_mutual_information(y, first.assignments), sk.nmi - 0.01);
}

TEST(KMeans, OverlappingClustersMatchScikitLearn) {
  // 12 Gaussian-like clusters in 6-D that overlap (many local optima of similar inertia):
  // dml's best of 10 is within 1% of scikit-learn's best of 10, and NMI within 0.02.
  const int64_t classes = 12, n = 600, d = 6;
  auto idx = torch::arange(n, torch::kInt64);
  auto labels = idx.remainder(classes);
  auto centres = random_uniform_tensor(RngKey{8, RngStream::kInit, 0}, torch::arange(classes, torch::kInt64), d) * 6;
  // (Sum of 3 uniforms - 1.5) * 2: roughly normal, sd 1.
  auto u = random_uniform_tensor(RngKey{8, RngStream::kInit, 1}, idx, 3 * d).reshape({n, 3, d}).sum(1) - 1.5;
  auto x = (centres.index_select(0, labels) + u * 2).contiguous();
  auto r = kmeans(x, classes, 4);
  auto sk = sklearn_kmeans(x, labels, classes, r.assignments);
  EXPECT_NEAR(sk.inertia_of_dml, r.inertia, 1e-5 * r.inertia);
  EXPECT_LE(r.inertia, 1.01 * sk.inertia);
  EXPECT_GE(r.inertia, 0.99 * sk.inertia);
  EXPECT_NEAR(normalized_mutual_information(labels, r.assignments), sk.nmi, 0.02);
  EXPECT_NEAR(normalized_mutual_information(labels, r.assignments), sk.nmi_of_dml, 1e-12);
  // The tolerance is one that the first, the last and the worst of dml's starts each break (here
  // only start 5 of 10 is within 1%: plain k-means++ starts are individually worse than
  // scikit-learn's greedy ones).
  EXPECT_GT(r.restart_inertias.front(), 1.05 * sk.inertia);
  EXPECT_GT(r.restart_inertias.back(), 1.05 * sk.inertia);
  EXPECT_GT(*std::max_element(r.restart_inertias.begin(), r.restart_inertias.end()), 1.05 * sk.inertia);
}

TEST(KMeans, ThreadCountDoesNotChangeTheResult) {
  // Large enough for the point loops and the GEMM to split across threads.
  const int64_t n = 3000, d = 16, k = 40;
  auto x = random_uniform_tensor(RngKey{6, RngStream::kInit, 0}, torch::arange(n, torch::kInt64), d);
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto one = kmeans(x, k, 3, starts(3));
  torch::set_num_threads(2);
  auto two = kmeans(x, k, 3, starts(3));
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one.assignments, two.assignments));
  EXPECT_TRUE(torch::equal(one.centers, two.centers));
  EXPECT_EQ(one.restart_inertias, two.restart_inertias);
  EXPECT_EQ(one.best_restart, two.best_restart);
}

TEST(KMeans, RejectsBadOptions) {
  auto x = torch::zeros({4, 2});
  auto field_of = [&](const KMeansOptions& o) -> std::string {
    try {
      kmeans(x, 2, 0, o);
    } catch (const OptionError& e) {
      return e.field();
    }
    return "";
  };
  KMeansOptions o;
  o.restarts = 0;
  EXPECT_EQ(field_of(o), "restarts");
  o = KMeansOptions{};
  o.max_iterations = 0;
  EXPECT_EQ(field_of(o), "max_iterations");
  o = KMeansOptions{};
  o.first_restart = -1;
  EXPECT_EQ(field_of(o), "first_restart");
  o.first_restart = (int64_t{1} << 32) - 9;  // + 10 starts > 2^32
  EXPECT_EQ(field_of(o), "first_restart");
  o.first_restart = (int64_t{1} << 32) - 10;
  EXPECT_NO_THROW(validate_kmeans_options(o));
  // compute_retrieval_metrics checks them only with NMI.
  o = KMeansOptions{};
  o.restarts = 0;
  auto y = torch::tensor(std::vector<int64_t>{0, 0, 1, 1});
  EXPECT_THROW(compute_retrieval_metrics(x, y, {1}, /*with_nmi=*/true, 0, 0, o), OptionError);
  EXPECT_NO_THROW(compute_retrieval_metrics(x, y, {1}, /*with_nmi=*/false, 0, 0, o));
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
