#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <tuple>

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

// Embeddings as a text matrix for the NumPy references: one row per item, its values (%.17g) then its label.
void write_rows(const std::string& path, const at::Tensor& x, const at::Tensor& y) {
  std::ofstream out(path);
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

std::string join_ks(const std::vector<int64_t>& ks) {
  std::string ks_text;
  for (int64_t k : ks) ks_text += (ks_text.empty() ? "" : ",") + std::to_string(k);
  return ks_text;
}

std::vector<double> parse_values(const test::CommandResult& result) {
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::istringstream in(result.output);
  std::vector<double> values;
  double v = 0;
  while (in >> v) values.push_back(v);
  return values;
}

// Independent NumPy computation (tests/eval/python/retrieval_metrics_reference.py): float64 distance
// matrix from direct differences, stable argsort.
std::vector<double> numpy_metrics(const at::Tensor& x, const at::Tensor& y, const std::vector<int64_t>& ks) {
  test::TempDir dir;
  write_rows(dir.file("data.txt"), x, y);
  return parse_values(
      test::run_python_file("tests/eval/python/retrieval_metrics_reference.py", {dir.file("data.txt"), join_ks(ks)}));
}

// The same for a query set against a gallery (tests/eval/python/query_gallery_reference.py).
std::vector<double> numpy_query_gallery_metrics(const at::Tensor& xq, const at::Tensor& yq, const at::Tensor& xg,
                                                const at::Tensor& yg, const std::vector<int64_t>& ks) {
  test::TempDir dir;
  write_rows(dir.file("query.txt"), xq, yq);
  write_rows(dir.file("gallery.txt"), xg, yg);
  return parse_values(test::run_python_file("tests/eval/python/query_gallery_reference.py",
                                            {dir.file("query.txt"), dir.file("gallery.txt"), join_ks(ks)}));
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

TEST(QueryGalleryMetrics, PointsOnALineByHand) {
  // gallery:  g0 @0 A, g1 @2 B, g2 @4 A, g3 @6 B, g4 @10 B        (R: A 2, B 3, C 0)
  // Neighbours of each query among all 5 (distance, ties to the lower gallery index):
  //  q0 @1 A: g0(1) g1(1) g2(3) g3(5) g4(9)  -> A B A B B  first hit 0; top-2: 1 hit -> RP 1/2, AP (1/1)/2 = 1/2
  //  q1 @5 B: g2(1) g3(1) g1(3) g0(5) g4(5)  -> A B B A B  first hit 1; top-3: 2 -> RP 2/3,
  //                                                        AP (1/2 + 2/3)/3 = 7/18
  //  q2 @4 C: g2(0) ...                      -> no hit ever (R = 0): a miss, left out of RP and MAP@R
  //  q3 @2 A: g1(0) g0(2) g2(2) g3(4) g4(8)  -> B A A B B  (g1 is at the query's own position and
  //                                                        counts normally) first hit 1; RP 1/2, AP (1/2)/2 = 1/4
  //  q4 @7 B: g3(1) g2(3) g4(3) g1(5) g0(7)  -> B A B B A  first hit 0; top-3: 2 -> RP 2/3,
  //                                                        AP (1 + 2/3)/3 = 5/9
  // Recall@1 = 2/5 (q0, q4), @2 = 4/5, @5 = @10 = 4/5 (K > G = 5 means all 5). P@1 = 2/5.
  // R-Precision = (1/2 + 2/3 + 1/2 + 2/3) / 4 = 7/12; MAP@R = (9 + 7 + 4.5 + 10)/18 / 4 = 61/144.
  auto gallery = points_on_line({0, 2, 4, 6, 10});
  auto gallery_labels = torch::tensor(std::vector<int64_t>{0, 1, 0, 1, 1});
  auto query = points_on_line({1, 5, 4, 2, 7});
  auto query_labels = torch::tensor(std::vector<int64_t>{0, 1, 2, 0, 1});
  for (int64_t block : {0, 1, 2, 5}) {
    SCOPED_TRACE(block);
    auto m = compute_query_gallery_metrics(query, query_labels, gallery, gallery_labels, {1, 2, 5, 10}, block);
    ASSERT_EQ(m.recall_at_k.size(), 4u);
    EXPECT_DOUBLE_EQ(m.recall_at_k[0], 2.0 / 5);
    EXPECT_DOUBLE_EQ(m.recall_at_k[1], 4.0 / 5);
    EXPECT_DOUBLE_EQ(m.recall_at_k[2], 4.0 / 5);
    EXPECT_DOUBLE_EQ(m.recall_at_k[3], 4.0 / 5);
    EXPECT_DOUBLE_EQ(m.precision_at_1, 2.0 / 5);
    EXPECT_DOUBLE_EQ(m.r_precision, 7.0 / 12);
    EXPECT_DOUBLE_EQ(m.map_at_r, 61.0 / 144);
    EXPECT_EQ(m.num_queries, 5);
    EXPECT_EQ(m.nmi, -1);
    EXPECT_EQ(m.ks, (std::vector<int64_t>{1, 2, 5, 10}));
  }
}

TEST(QueryGalleryMetrics, NothingIsExcludedWhenBothSetsAreTheSame) {
  // Passing one set as both query and gallery keeps every query's own item (distance 0, first):
  // P@1 = 1 and R counts the query itself; the same-set protocol leaves it out instead.
  auto x = points_on_line({3, 4, 5, 0, 8, 9});
  auto y = torch::tensor(std::vector<int64_t>{1, 0, 0, 0, 1, 1});
  auto m = compute_query_gallery_metrics(x, y, x, y, {1, 2});
  EXPECT_DOUBLE_EQ(m.precision_at_1, 1.0);
  EXPECT_DOUBLE_EQ(m.recall_at_k[0], 1.0);
  // q0 @3 B: 0(0) 1(1) 2(2) 3(3) 4(5) 5(6) -> B A A A B B, R = 3: RP 1/3, AP 1/3.
  // q1 @4 A: 1(0) 0(1) 2(1) 3(4) ... -> A B A, R = 3: RP 2/3, AP (1 + 2/3)/3 = 5/9.
  // q2 @5 A: 2(0) 1(1) 0(2) 4(3) 5(4) 3(5) -> A A B, R = 3: RP 2/3, AP (1 + 1)/3 = 2/3.
  // q3 @0 A: 3(0) 0(3) 1(4) 2(5) -> A B A, RP 2/3, AP 5/9.
  // q4 @8 B: 4(0) 5(1) 2(3) -> B B A, RP 2/3, AP 2/3.  q5 @9 B: 5(0) 4(1) 2(4) -> B B A, RP 2/3, AP 2/3.
  EXPECT_DOUBLE_EQ(m.r_precision, (1.0 / 3 + 5 * 2.0 / 3) / 6);
  EXPECT_NEAR(m.map_at_r, (1.0 / 3 + 5.0 / 9 + 2.0 / 3 + 5.0 / 9 + 2.0 / 3 + 2.0 / 3) / 6, 1e-15);
}

// Query and gallery sets for the NumPy cross-check, drawn like random_case; the query labels
// include one class absent from the gallery (R = 0) and the gallery a class no query has.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> random_query_gallery(bool integers, int64_t nq, int64_t ng,
                                                                                int64_t d, uint64_t seed) {
  auto [xq, yq] = random_case(integers, nq, d, seed);
  auto [xg, yg] = random_case(integers, ng, d, seed + 100);
  yq[0] = 555;   // no gallery item has this class
  yg[1] = 2000;  // no query has this one
  return {xq, yq, xg, yg};
}

void expect_query_gallery_matches_numpy(bool integers, int64_t nq, int64_t ng, int64_t d, uint64_t seed) {
  auto [xq, yq, xg, yg] = random_query_gallery(integers, nq, ng, d, seed);
  const std::vector<int64_t> ks{1, 2, 4, 8, 16, 1000};
  auto m = compute_query_gallery_metrics(xq, yq, xg, yg, ks);
  auto expected = numpy_query_gallery_metrics(xq, yq, xg, yg, ks);
  ASSERT_EQ(expected.size(), ks.size() + 3);
  for (size_t j = 0; j < ks.size(); ++j) EXPECT_NEAR(m.recall_at_k[j], expected[j], 1e-12) << "K=" << ks[j];
  EXPECT_NEAR(m.precision_at_1, expected[ks.size()], 1e-12);
  EXPECT_NEAR(m.r_precision, expected[ks.size() + 1], 1e-12);
  EXPECT_NEAR(m.map_at_r, expected[ks.size() + 2], 1e-12);
  EXPECT_EQ(m.num_queries, nq);
  EXPECT_GT(m.recall_at_k[0], 0.05);
  EXPECT_LT(m.recall_at_k[0], 0.95);
  EXPECT_LT(m.recall_at_k.back(), 1.0);  // the query without gallery items misses even at K = G
}

TEST(QueryGalleryMetrics, IntegerEmbeddingsWithManyTiesMatchNumpy) {
  expect_query_gallery_matches_numpy(true, 120, 170, 3, 21);
}

TEST(QueryGalleryMetrics, FloatEmbeddingsMatchNumpy) { expect_query_gallery_matches_numpy(false, 200, 310, 4, 22); }

TEST(QueryGalleryMetrics, BlockSizeAndThreadsDoNotChangeResults) {
  auto [xq, yq, xg, yg] = random_query_gallery(false, 131, 257, 8, 23);
  auto one_block = compute_query_gallery_metrics(xq, yq, xg, yg, kReferenceKs, /*block_rows=*/131);
  for (int64_t block : {1, 7, 64, 130, 0}) {
    SCOPED_TRACE(block);
    expect_identical(compute_query_gallery_metrics(xq, yq, xg, yg, kReferenceKs, block), one_block);
  }
  const int threads = torch::get_num_threads();
  torch::set_num_threads(2);
  expect_identical(compute_query_gallery_metrics(xq, yq, xg, yg, kReferenceKs, 7), one_block);
  torch::set_num_threads(threads);
}

TEST(QueryGalleryMetrics, RejectsBadInputs) {
  auto xq = torch::zeros({3, 2});
  auto yq = torch::zeros({3}, torch::kInt64);
  auto xg = torch::zeros({4, 2});
  auto yg = torch::zeros({4}, torch::kInt64);
  auto message = [](const std::function<void()>& call) -> std::string {
    try {
      call();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NO_THROW(compute_query_gallery_metrics(xq, yq, xg, yg, {1}));
  EXPECT_NE(message([&] { compute_query_gallery_metrics(xq, yq, torch::zeros({4, 3}), yg, {1}); }).find("dimensions"),
            std::string::npos);
  EXPECT_NE(message([&] { compute_query_gallery_metrics(xq.to(torch::kFloat64), yq, xg, yg, {1}); })
                .find("query_embeddings"),
            std::string::npos);
  EXPECT_NE(message([&] { compute_query_gallery_metrics(xq, yq, xg, yg.narrow(0, 0, 3), {1}); }).find("gallery_labels"),
            std::string::npos);
  EXPECT_THROW(compute_query_gallery_metrics(xq, yq.to(torch::kInt32), xg, yg, {1}), Error);
  EXPECT_THROW(compute_query_gallery_metrics(xq, yq, xg, yg, {0}), Error);
  EXPECT_THROW(compute_query_gallery_metrics(torch::zeros({0, 2}), torch::zeros({0}, torch::kInt64), xg, yg, {1}),
               Error);
  EXPECT_THROW(compute_query_gallery_metrics(xq, yq, torch::zeros({0, 2}), torch::zeros({0}, torch::kInt64), {1}),
               Error);
  auto bad = xg.clone();
  bad[2][0] = std::nanf("");
  EXPECT_NE(message([&] { compute_query_gallery_metrics(xq, yq, bad, yg, {1}); }).find("gallery_embeddings contain NaN"),
            std::string::npos);
  // One gallery item is enough: every K is capped at 1.
  auto m = compute_query_gallery_metrics(xq, yq, xg.narrow(0, 0, 1), yg.narrow(0, 0, 1), {1, 5});
  EXPECT_EQ(m.recall_at_k, (std::vector<double>{1.0, 1.0}));
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
