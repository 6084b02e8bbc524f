#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "dml/eval/retrieval_metrics.h"
#include "dml/util/counter_rng.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml {
namespace {

const std::vector<int64_t> kReferenceKs{1, 2, 4, 8, 16};

at::Tensor points_on_line(const std::vector<float>& positions) {
  auto x = torch::zeros({static_cast<int64_t>(positions.size()), 2});
  for (size_t i = 0; i < positions.size(); ++i) x[i][0] = positions[i];
  return x;
}

TEST(RetrievalMetrics, SixPointsOnALineByHand) {
  // index:     0  1  2  3  4  5
  // position:  3  4  5  0  8  9
  // label:     B  A  A  A  B  B      (R = 2 for every query)
  // Neighbours (distance, ties to the lower index) and their labels:
  //  q0 @3 B: 1(1) 2(2) 3(3) 4(5) 5(6)  -> A A A B B   first hit rank 4; top-2 hits 0 -> RP 0, AP 0
  //  q1 @4 A: 0(1) 2(1) 3(4) 4(4) 5(5)  -> B A A B B   (tie 0/2: 0 first) first hit rank 2;
  //                                                       RP 1/2; AP = (1/2 * [rank 2 hit]) / 2 = 0.25
  //  q2 @5 A: 1(1) 0(2) 4(3) 5(4) 3(5)  -> A B B B A   first hit rank 1; RP 1/2; AP = 1/2
  //  q3 @0 A: 0(3) 1(4) 2(5) 4(8) 5(9)  -> B A A B B   first hit rank 2; RP 1/2; AP = 0.25
  //  q4 @8 B: 5(1) 2(3) 1(4) 0(5) 3(8)  -> B A A B A   first hit rank 1; RP 1/2; AP = 1/2
  //  q5 @9 B: 4(1) 2(4) 1(5) 0(6) 3(9)  -> B A A B A   first hit rank 1; RP 1/2; AP = 1/2
  // Recall@1 = 3/6, @2 = 5/6, @4 = 6/6, @8 = @16 = 1 (K > N-1 means all 5 others).
  // P@1 = 3/6; R-Precision = 2.5/6; MAP@R = (0 + .25 + .5 + .25 + .5 + .5)/6 = 2/6.
  auto x = points_on_line({3, 4, 5, 0, 8, 9});
  auto y = torch::tensor(std::vector<int64_t>{1, 0, 0, 0, 1, 1});
  auto m = compute_retrieval_metrics(x, y, kReferenceKs, /*with_nmi=*/false, /*seed=*/0);
  ASSERT_EQ(m.recall_at_k.size(), 5u);
  EXPECT_DOUBLE_EQ(m.recall_at_k[0], 3.0 / 6);
  EXPECT_DOUBLE_EQ(m.recall_at_k[1], 5.0 / 6);
  EXPECT_DOUBLE_EQ(m.recall_at_k[2], 1.0);
  EXPECT_DOUBLE_EQ(m.recall_at_k[3], 1.0);
  EXPECT_DOUBLE_EQ(m.recall_at_k[4], 1.0);
  EXPECT_DOUBLE_EQ(m.precision_at_1, 3.0 / 6);
  EXPECT_DOUBLE_EQ(m.r_precision, 2.5 / 6);
  EXPECT_DOUBLE_EQ(m.map_at_r, 2.0 / 6);
  EXPECT_EQ(m.num_queries, 6);
  EXPECT_EQ(m.nmi, -1);
  EXPECT_EQ(m.ks, kReferenceKs);

  // Swapping the indices of items 0 and 2 (same positions) flips q1's tie: its nearest is now the
  // A at index 0, so Recall@1 = 4/6, and q1's RP stays 1/2 but AP becomes 1/2: MAP@R = 2.25/6.
  auto x2 = points_on_line({5, 4, 3, 0, 8, 9});
  auto y2 = torch::tensor(std::vector<int64_t>{0, 0, 1, 0, 1, 1});
  auto m2 = compute_retrieval_metrics(x2, y2, {1}, false, 0);
  EXPECT_DOUBLE_EQ(m2.recall_at_k[0], 4.0 / 6);
  EXPECT_DOUBLE_EQ(m2.map_at_r, 2.25 / 6);
}

TEST(RetrievalMetrics, DuplicatesCountAndLoneQueriesAreExcludedFromRPrecision) {
  // index 0 and 1: same point, class 0 (each is the other's nearest, at distance 0);
  // index 2: class 1 alone (R = 0); index 3: class 2 alone (R = 0), at distance 1 from 0 and 1.
  // Recall@1 = P@1 = 2/4 (lone queries miss); RP = MAP@R = 1 over the 2 queries with R > 0.
  auto x = points_on_line({0, 0, 5, 1});
  auto y = torch::tensor(std::vector<int64_t>{0, 0, 1, 2});
  auto m = compute_retrieval_metrics(x, y, {1, 3}, false, 0);
  EXPECT_DOUBLE_EQ(m.recall_at_k[0], 0.5);
  EXPECT_DOUBLE_EQ(m.recall_at_k[1], 0.5);
  EXPECT_DOUBLE_EQ(m.precision_at_1, 0.5);
  EXPECT_DOUBLE_EQ(m.r_precision, 1.0);
  EXPECT_DOUBLE_EQ(m.map_at_r, 1.0);
  EXPECT_EQ(m.num_queries, 4);
}

// Embeddings and labels for the NumPy cross-check: small integers (exact distances, many ties)
// or uniform floats; labels with uneven class sizes and one singleton class.
std::pair<at::Tensor, at::Tensor> random_case(bool integers, int64_t n, int64_t d, uint64_t seed) {
  auto idx = torch::arange(n, torch::kInt64);
  auto u = random_uniform_tensor(RngKey{seed, RngStream::kInit, 0}, idx, d);
  auto x = integers ? (u * 5).floor() - 2 : u * 2 - 1;
  auto v = random_uniform_tensor(RngKey{seed, RngStream::kInit, 1}, idx, 1).reshape({n});
  auto y = (v * v * 12).floor().to(torch::kInt64) * 3 + 7;  // uneven sizes, non-contiguous values
  y[n - 1] = 1000;                                            // singleton: R = 0
  return {x.contiguous(), y};
}

// Independent NumPy computation (tests/eval/python/retrieval_metrics_reference.py): float64 distance
// matrix from direct differences, stable argsort.
std::vector<double> numpy_metrics(const at::Tensor& x, const at::Tensor& y, const std::vector<int64_t>& ks) {
  test::TempDir dir;
  {
    std::ofstream out(dir.file("data.txt"));
    auto xd = x.to(torch::kFloat64);
    for (int64_t i = 0; i < x.size(0); ++i) {
      char buffer[40];
      for (int64_t j = 0; j < x.size(1); ++j) {
        std::snprintf(buffer, sizeof(buffer), "%.17g ", xd[i][j].item<double>());
        out << buffer;
      }
      out << y[i].item<int64_t>() << "\n";
    }
  }
  std::string ks_text;
  for (int64_t k : ks) ks_text += (ks_text.empty() ? "" : ",") + std::to_string(k);
  auto result = test::run_python_file("tests/eval/python/retrieval_metrics_reference.py", {dir.file("data.txt"), ks_text});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::istringstream in(result.output);
  std::vector<double> values;
  double v = 0;
  while (in >> v) values.push_back(v);
  return values;
}

void expect_matches_numpy(bool integers, int64_t n, int64_t d, uint64_t seed) {
  auto [x, y] = random_case(integers, n, d, seed);
  const std::vector<int64_t> ks{1, 2, 4, 8, 16, 1000};
  auto m = compute_retrieval_metrics(x, y, ks, false, 0);
  auto expected = numpy_metrics(x, y, ks);
  ASSERT_EQ(expected.size(), ks.size() + 3);
  for (size_t j = 0; j < ks.size(); ++j) EXPECT_NEAR(m.recall_at_k[j], expected[j], 1e-12) << "K=" << ks[j];
  EXPECT_NEAR(m.precision_at_1, expected[ks.size()], 1e-12);
  EXPECT_NEAR(m.r_precision, expected[ks.size() + 1], 1e-12);
  EXPECT_NEAR(m.map_at_r, expected[ks.size() + 2], 1e-12);
  // Not a degenerate case: some but not all queries hit at 1.
  EXPECT_GT(m.recall_at_k[0], 0.05);
  EXPECT_LT(m.recall_at_k[0], 0.95);
}

TEST(RetrievalMetrics, IntegerEmbeddingsWithManyTiesMatchNumpy) { expect_matches_numpy(true, 150, 3, 11); }

TEST(RetrievalMetrics, FloatEmbeddingsMatchNumpy) { expect_matches_numpy(false, 300, 4, 12); }

void expect_identical(const RetrievalMetrics& a, const RetrievalMetrics& b) {
  EXPECT_EQ(a.recall_at_k, b.recall_at_k);
  EXPECT_EQ(a.precision_at_1, b.precision_at_1);
  EXPECT_EQ(a.r_precision, b.r_precision);
  EXPECT_EQ(a.map_at_r, b.map_at_r);
  EXPECT_EQ(a.nmi, b.nmi);
  EXPECT_EQ(a.num_queries, b.num_queries);
}

TEST(RetrievalMetrics, BlockSizeAndThreadsDoNotChangeResults) {
  auto [x, y] = random_case(false, 257, 8, 13);
  auto one_block = compute_retrieval_metrics(x, y, kReferenceKs, true, 5, /*block_rows=*/257);
  for (int64_t block : {1, 7, 64, 256, 0}) {
    SCOPED_TRACE(block);
    expect_identical(compute_retrieval_metrics(x, y, kReferenceKs, true, 5, block), one_block);
  }
  const int threads = torch::get_num_threads();
  torch::set_num_threads(2);
  expect_identical(compute_retrieval_metrics(x, y, kReferenceKs, true, 5, 7), one_block);
  torch::set_num_threads(threads);
}

TEST(RetrievalMetrics, RejectsBadInputs) {
  auto x = torch::zeros({4, 2});
  auto y = torch::zeros({4}, torch::kInt64);
  EXPECT_THROW(compute_retrieval_metrics(x.to(torch::kFloat64), y, {1}, false, 0), Error);
  EXPECT_THROW(compute_retrieval_metrics(x, torch::zeros({3}, torch::kInt64), {1}, false, 0), Error);
  EXPECT_THROW(compute_retrieval_metrics(x, y.to(torch::kInt32), {1}, false, 0), Error);
  EXPECT_THROW(compute_retrieval_metrics(x, y, {0}, false, 0), Error);
  EXPECT_THROW(compute_retrieval_metrics(torch::zeros({1, 2}), torch::zeros({1}, torch::kInt64), {1}, false, 0),
               Error);
  auto bad = x.clone();
  bad[1][1] = std::nanf("");
  try {
    compute_retrieval_metrics(bad, y, {1}, false, 0);
    FAIL() << "NaN accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos);
  }
}

TEST(MetricsFormat, TableAndJson) {
  RetrievalMetrics a;
  a.ks = {1, 2};
  a.recall_at_k = {0.5, 0.75};
  a.precision_at_1 = 0.5;
  a.r_precision = 0.25;
  a.map_at_r = 0.125;
  a.nmi = 0.8;
  RetrievalMetrics b;
  b.ks = {1, 4};
  b.recall_at_k = {1.0, 1.0};
  EXPECT_EQ(format_metrics_table({{"epoch 3", a}, {"best", b}}),
            "metric       epoch 3    best\n"
            "Recall@1      0.5000  1.0000\n"
            "Recall@2      0.7500       -\n"
            "Recall@4           -  1.0000\n"
            "P@1           0.5000  0.0000\n"
            "R-Precision   0.2500  0.0000\n"
            "MAP@R         0.1250  0.0000\n"
            "NMI           0.8000       -\n");
  EXPECT_EQ(metrics_json_fields(a),
            "\"recall@1\":0.5,\"recall@2\":0.75,\"precision@1\":0.5,\"r_precision\":0.25,\"map@r\":0.125,\"nmi\":0.8");
  EXPECT_EQ(metrics_json_fields(b),
            "\"recall@1\":1,\"recall@4\":1,\"precision@1\":0,\"r_precision\":0,\"map@r\":0,\"nmi\":null");
}

}  // namespace
}  // namespace dml
