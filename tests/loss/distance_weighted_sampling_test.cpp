// Distance-weighted sampling: weights against a double-precision scalar loop and NumPy, draws against
// the weights (chi-square and total variation), fallbacks, degenerate inputs, split invariance.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "dml/loss/distance_weighted_sampling.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml {
namespace {

using Matrix = std::vector<std::vector<double>>;

Matrix to_matrix(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat64).contiguous().cpu();
  Matrix m(c.size(0), std::vector<double>(c.size(1)));
  for (int64_t i = 0; i < c.size(0); ++i)
    for (int64_t j = 0; j < c.size(1); ++j) m[i][j] = c[i][j].item<double>();
  return m;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kInt64).contiguous().cpu();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Labels of class blocks: block b has label labels_of_blocks[b].
torch::Tensor block_labels(const std::vector<int64_t>& labels_of_blocks, int64_t k) {
  std::vector<int64_t> labels;
  for (int64_t l : labels_of_blocks)
    for (int64_t r = 0; r < k; ++r) labels.push_back(l);
  return torch::tensor(labels, torch::kInt64);
}

torch::Tensor random_unit_rows(int64_t n, int64_t d, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor x = torch::randn({n, d}, torch::kFloat64);
  return (x / x.norm(2, 1, true)).to(torch::kFloat32);
}

double distance(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

// Independent reference: direct differences (not the expansion), double precision, explicit loops.
Matrix reference_weights(const torch::Tensor& candidates, const torch::Tensor& labels_t, int64_t begin,
                         int64_t count, const SamplingOptions& o) {
  const Matrix x = to_matrix(candidates);
  const std::vector<int64_t> y = to_vector(labels_t);
  const int64_t n = static_cast<int64_t>(x.size());
  const double d = static_cast<double>(x[0].size());
  Matrix w(count, std::vector<double>(n, 0.0));
  for (int64_t a = 0; a < count; ++a) {
    const int64_t i = begin + a;
    std::vector<double> log_w(n, 0.0);
    std::vector<bool> ok(n, false);
    double best = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      const double dist = std::max(distance(x[i], x[j]), o.cutoff);
      ok[j] = y[j] != y[i] && dist < o.nonzero_loss_cutoff;
      if (!ok[j]) continue;
      log_w[j] = (2.0 - d) * std::log(dist) - (d - 3.0) / 2.0 * std::log(1.0 - dist * dist / 4.0);
      best = std::max(best, log_w[j]);
    }
    double total = 0;
    for (int64_t j = 0; j < n; ++j) total += ok[j] ? std::exp(log_w[j] - best) : 0.0;
    if (total > 0) {
      for (int64_t j = 0; j < n; ++j) w[a][j] = ok[j] ? std::exp(log_w[j] - best) / total : 0.0;
      continue;
    }
    int64_t others = 0;
    for (int64_t j = 0; j < n; ++j) others += y[j] != y[i];
    for (int64_t j = 0; j < n; ++j) {
      if (others > 0) {
        w[a][j] = y[j] != y[i] ? 1.0 / others : 0.0;
      } else {
        w[a][j] = j != i ? 1.0 / (n - 1) : 0.0;
      }
    }
  }
  return w;
}

void expect_weights_near(const torch::Tensor& actual_t, const Matrix& expected, double rel, double abs_tol) {
  ASSERT_EQ(actual_t.scalar_type(), torch::kFloat32);
  const Matrix actual = to_matrix(actual_t);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    double row_sum = 0;
    for (size_t j = 0; j < actual[i].size(); ++j) {
      ASSERT_TRUE(std::isfinite(actual[i][j])) << i << "," << j;
      EXPECT_NEAR(actual[i][j], expected[i][j], abs_tol + rel * expected[i][j]) << "row " << i << " col " << j;
      if (expected[i][j] == 0.0) {
        EXPECT_EQ(actual[i][j], 0.0) << "row " << i << " col " << j;
      }
      row_sum += actual[i][j];
    }
    EXPECT_NEAR(row_sum, 1.0, 1e-5) << "row " << i;
  }
}

// counts[a][j]: how often candidate j was drawn as a negative of anchor a over `steps` steps.
Matrix negative_counts(const torch::Tensor& x, const torch::Tensor& y, int64_t begin, int64_t count,
                       const SamplingOptions& o, uint64_t seed, int steps) {
  const int64_t n = x.size(0);
  torch::Tensor counts = torch::zeros({count * n}, torch::kInt64);
  for (int s = 0; s < steps; ++s) {
    const Triplets t = sample_triplets(x, y, begin, count, o, seed, static_cast<uint64_t>(s));
    counts += torch::bincount((t.anchor - begin) * n + t.negative, {}, count * n);
  }
  return to_matrix(counts.view({count, n}));
}

struct FitStatistics {
  double chi_square = 0;
  int64_t dof = 0;
  double max_total_variation = 0;
};

FitStatistics goodness_of_fit(const Matrix& counts, const Matrix& probs) {
  FitStatistics f;
  for (size_t i = 0; i < counts.size(); ++i) {
    double draws = 0;
    for (double c : counts[i]) draws += c;
    double tv = 0;
    int64_t categories = 0;
    for (size_t j = 0; j < counts[i].size(); ++j) {
      const double expected = draws * probs[i][j];
      tv += std::abs(counts[i][j] / draws - probs[i][j]) / 2.0;
      if (probs[i][j] == 0.0) continue;
      ++categories;
      f.chi_square += (counts[i][j] - expected) * (counts[i][j] - expected) / expected;
    }
    f.dof += categories - 1;
    f.max_total_variation = std::max(f.max_total_variation, tv);
  }
  return f;
}

TEST(DistanceWeightedSampling, TripletLayoutIsAnchorMajorWithBlockPositives) {
  const SamplingOptions o;  // batch_k = 5
  const torch::Tensor x = random_unit_rows(20, 8, 1);
  const torch::Tensor y = block_labels({3, 1, 4, 0}, 5);
  const Triplets t = sample_triplets(x, y, /*anchor_begin=*/5, /*anchor_count=*/10, o, 7, 0);
  ASSERT_EQ(t.anchor.numel(), 40);
  ASSERT_EQ(t.anchor.scalar_type(), torch::kInt64);
  const auto a = to_vector(t.anchor), p = to_vector(t.positive), neg = to_vector(t.negative);
  const std::vector<int64_t> labels = to_vector(y);
  for (int64_t i = 0; i < 10; ++i) {
    const int64_t anchor = 5 + i, block = anchor / 5 * 5;
    std::vector<int64_t> expected_positives;
    for (int64_t r = block; r < block + 5; ++r)
      if (r != anchor) expected_positives.push_back(r);
    for (int64_t s = 0; s < 4; ++s) {
      EXPECT_EQ(a[i * 4 + s], anchor);
      EXPECT_EQ(p[i * 4 + s], expected_positives[s]);
      EXPECT_NE(labels[neg[i * 4 + s]], labels[anchor]);
    }
  }
}

TEST(DistanceWeightedSampling, WeightsMatchDoublePrecisionScalarLoop) {
  for (int64_t dim : {3, 4, 16, 64}) {
    const torch::Tensor x = random_unit_rows(30, dim, 10 + dim);
    const torch::Tensor y = block_labels({0, 1, 2, 3, 4, 5}, 5);
    SamplingOptions o;
    // Guard against a pair within rounding of the cutoff (float32 vs double could disagree on it).
    const Matrix xm = to_matrix(x);
    for (size_t i = 0; i < xm.size(); ++i)
      for (size_t j = 0; j < xm.size(); ++j) ASSERT_GT(std::abs(distance(xm[i], xm[j]) - 1.4), 1e-4);
    const torch::Tensor w = negative_weights(x, y, 10, 20, o);
    ASSERT_EQ(w.sizes(), (std::vector<int64_t>{20, 30}));
    SCOPED_TRACE("dim " + std::to_string(dim));
    expect_weights_near(w, reference_weights(x, y, 10, 20, o), 1e-3, 1e-6);
  }
}

// Writes a matrix / vector as text for NumPy.
void write_text(const std::string& path, const Matrix& m) {
  std::ofstream out(path);
  out.precision(17);
  for (const auto& row : m) {
    for (double v : row) out << v << ' ';
    out << '\n';
  }
}

Matrix numpy_weights(const torch::Tensor& x, const torch::Tensor& y, int64_t begin, int64_t count,
                     const SamplingOptions& o) {
  test::TempDir dir;
  write_text(dir.file("x.txt"), to_matrix(x));
  write_text(dir.file("y.txt"), to_matrix(y.view({-1, 1})));
  // Independent NumPy weights: tests/loss/python/distance_weighted_weights.py.
  const auto result = test::run_python_file("tests/loss/python/distance_weighted_weights.py",
                                            {dir.file("x.txt"), dir.file("y.txt"), std::to_string(begin),
                                             std::to_string(count), std::to_string(o.cutoff),
                                             std::to_string(o.nonzero_loss_cutoff)});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::istringstream in(result.output);
  Matrix m(count, std::vector<double>(x.size(0)));
  for (auto& row : m)
    for (double& v : row) in >> v;
  EXPECT_FALSE(in.fail()) << result.output;
  return m;
}

// 128-d: the anchor class is a tight cluster (same-class D << 0.5, log w ~ 91 there), the other classes
// sit at D in [1.2, 1.4) from it. The reference's global max would push these weights (~e^-87) into
// float32 denormals (zero on flush-to-zero hardware) and, with the far pair at D = 1.97 (log w ~ 134) in the
// batch, to exact zeros even on this CPU, falling back to uniform; the per-row max keeps the distribution.
TEST(DistanceWeightedSampling, WeightsIn128dDoNotUnderflowAndMatchNumPy) {
  const int64_t dim = 128, k = 5;
  torch::manual_seed(5);
  std::vector<torch::Tensor> rows;
  torch::Tensor e0 = torch::zeros({dim}, torch::kFloat64);
  e0[0] = 1.0;
  // Anchor-class noise lives in coordinates 16.. only, so the targets' distances below stay put.
  for (int r = 0; r < k; ++r) {
    torch::Tensor noise = torch::zeros({dim}, torch::kFloat64);
    noise.narrow(0, 16, dim - 16).copy_(0.005 * torch::randn({dim - 16}, torch::kFloat64));
    rows.push_back(e0 + noise);
  }
  const std::vector<double> targets = {1.2, 1.25, 1.3, 1.33, 1.36, 1.38, 1.39, 1.395, 1.2, 1.22,
                                       1.27, 1.31, 1.5, 1.7, 1.97};  // last three: beyond the cutoff
  for (size_t j = 0; j < targets.size(); ++j) {
    const double phi = 2.0 * std::asin(targets[j] / 2.0);  // |e0 - v| = 2 sin(phi/2)
    torch::Tensor v = std::cos(phi) * e0;
    v[1 + static_cast<int64_t>(j)] = std::sin(phi);
    rows.push_back(v);
  }
  torch::Tensor x = torch::stack(rows);
  x = (x / x.norm(2, 1, true)).to(torch::kFloat32);
  const torch::Tensor y = block_labels({0, 1, 2, 3}, k);
  const SamplingOptions o;
  const torch::Tensor w = negative_weights(x, y, 0, k, o);
  const Matrix expected = numpy_weights(x, y, 0, k, o);
  const Matrix actual = to_matrix(w);
  for (int64_t a = 0; a < k; ++a) {
    for (size_t j = 0; j < targets.size(); ++j) {
      const size_t col = k + j;
      if (targets[j] < 1.4) {
        EXPECT_GT(actual[a][col], 1e-4) << "anchor " << a << " target D " << targets[j];
      } else {
        EXPECT_EQ(actual[a][col], 0.0);
      }
    }
  }
  expect_weights_near(w, expected, 2e-3, 1e-7);
  // The closest negative (D = 1.2) outweighs the farthest admissible one (D = 1.395) ~e^5 (log w 4.9 vs -0.1):
  // the distribution is far from the uniform fallback.
  EXPECT_GT(actual[0][k + 0] / actual[0][k + 7], 50.0);
}

TEST(DistanceWeightedSampling, DrawsFollowTheWeights) {
  const torch::Tensor x = random_unit_rows(20, 4, 3);
  const torch::Tensor y = block_labels({0, 1, 2, 3}, 5);
  const SamplingOptions o;
  const Matrix probs = reference_weights(x, y, 0, 20, o);
  const Matrix counts = negative_counts(x, y, 0, 20, o, /*seed=*/123, /*steps=*/1500);  // 6000 draws per anchor
  const FitStatistics fit = goodness_of_fit(counts, probs);
  ASSERT_GT(fit.dof, 100);
  // Chi-square with dof degrees of freedom: mean dof, sd sqrt(2 dof); 5 sd is far in the tail.
  EXPECT_LT(fit.chi_square, fit.dof + 5.0 * std::sqrt(2.0 * fit.dof)) << "dof " << fit.dof;
  EXPECT_LT(fit.max_total_variation, 0.04);
  // Power check: the same counts are incompatible with drawing uniformly among admissible candidates.
  Matrix uniform = probs;
  for (auto& row : uniform) {
    double m = 0;
    for (double p : row) m += p > 0;
    for (double& p : row) p = p > 0 ? 1.0 / m : 0.0;
  }
  EXPECT_GT(goodness_of_fit(counts, uniform).chi_square, 20.0 * fit.dof);
}

TEST(DistanceWeightedSampling, NegativesHaveAnotherClassAndDistanceBelowCutoff) {
  const torch::Tensor x = random_unit_rows(40, 16, 4);  // 16-d: many pairs on both sides of 1.4
  const torch::Tensor y = block_labels({0, 1, 2, 3, 4, 5, 6, 7}, 5);
  const SamplingOptions o;
  const Matrix xm = to_matrix(x);
  const std::vector<int64_t> labels = to_vector(y);
  int64_t far_pairs = 0;
  for (int64_t i = 0; i < 40; ++i)
    for (int64_t j = 0; j < 40; ++j) far_pairs += labels[i] != labels[j] && distance(xm[i], xm[j]) >= 1.4;
  ASSERT_GT(far_pairs, 100);
  const Matrix counts = negative_counts(x, y, 0, 40, o, 99, 200);
  for (int64_t i = 0; i < 40; ++i) {
    for (int64_t j = 0; j < 40; ++j) {
      if (counts[i][j] == 0) continue;
      EXPECT_NE(labels[i], labels[j]) << i << "->" << j;
      EXPECT_LT(distance(xm[i], xm[j]), 1.4 + 1e-5) << i << "->" << j;
    }
  }
}

// Class 0 sits at +e0, the other classes near -e0 (D ~ 2 > 1.4 from class 0): class-0 rows fall back
// to uniform over the 15 other-class rows; the other rows keep weighted draws.
TEST(DistanceWeightedSampling, FallbackRowsAreUniformOverOtherClasses) {
  torch::manual_seed(8);
  torch::Tensor x = 0.15 * torch::randn({20, 3}, torch::kFloat64);
  x.narrow(0, 0, 5).select(1, 0).add_(1.0);
  x.narrow(0, 5, 15).select(1, 0).add_(-1.0);
  x = (x / x.norm(2, 1, true)).to(torch::kFloat32);
  const torch::Tensor y = block_labels({0, 1, 2, 3}, 5);
  const SamplingOptions o;
  const Matrix probs = reference_weights(x, y, 0, 20, o);
  for (int64_t a = 0; a < 5; ++a)
    for (int64_t j = 0; j < 20; ++j) ASSERT_DOUBLE_EQ(probs[a][j], j < 5 ? 0.0 : 1.0 / 15.0);
  expect_weights_near(negative_weights(x, y, 0, 20, o), probs, 1e-3, 1e-6);
  const Matrix counts = negative_counts(x, y, 0, 20, o, 5, 1000);
  const FitStatistics fit = goodness_of_fit(counts, probs);
  EXPECT_LT(fit.chi_square, fit.dof + 5.0 * std::sqrt(2.0 * fit.dof));
  EXPECT_LT(fit.max_total_variation, 0.05);
  for (int64_t a = 0; a < 5; ++a)
    for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(counts[a][j], 0.0);
}

TEST(DistanceWeightedSampling, IdenticalAndAntipodalEmbeddingsGiveNoNaN) {
  const SamplingOptions o;
  const torch::Tensor y = block_labels({0, 1, 2, 3}, 5);
  // Identical rows: every D clips to 0.5, so each row is uniform over the 15 other-class rows.
  const torch::Tensor same = torch::ones({20, 128}) / std::sqrt(128.0);
  const torch::Tensor w_same = negative_weights(same, y, 0, 20, o);
  expect_weights_near(w_same, reference_weights(same, y, 0, 20, o), 1e-4, 1e-6);
  EXPECT_NEAR(w_same[0][19].item<double>(), 1.0 / 15.0, 1e-6);
  // Antipodal: classes 0, 2 at +e0, classes 1, 3 at -e0 (D = 2 exactly, and D^2 may round past 4).
  torch::Tensor anti = torch::zeros({20, 128});
  for (int64_t r = 0; r < 20; ++r) anti[r][0] = (r / 5) % 2 == 0 ? 1.0 : -1.0;
  for (int64_t dim : {128, 3}) {
    const torch::Tensor xa = anti.narrow(1, 0, dim).contiguous();
    const torch::Tensor w = negative_weights(xa, y, 0, 20, o);
    EXPECT_TRUE(torch::isfinite(w).all().item<bool>()) << "dim " << dim;
    expect_weights_near(w, reference_weights(xa, y, 0, 20, o), 1e-4, 1e-6);
    const Triplets t = sample_triplets(xa, y, 0, 20, o, 1, 2);
    EXPECT_TRUE(t.negative.ge(0).all().item<bool>() && t.negative.lt(20).all().item<bool>());
    // Everything also admissible when the cutoff is above 2: the clipped D keeps the logs finite.
    SamplingOptions wide = o;
    wide.nonzero_loss_cutoff = 2.5;
    EXPECT_TRUE(torch::isfinite(negative_weights(xa, y, 0, 20, wide)).all().item<bool>());
  }
}

// Documented behaviour: a single-class global batch draws uniformly from every row except the anchor.
TEST(DistanceWeightedSampling, SingleClassBatchDrawsFromAllOtherRows) {
  const SamplingOptions o;
  const torch::Tensor x = random_unit_rows(10, 8, 6);
  const torch::Tensor y = torch::full({10}, 7, torch::kInt64);
  const Matrix w = to_matrix(negative_weights(x, y, 0, 10, o));
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t j = 0; j < 10; ++j) EXPECT_NEAR(w[i][j], i == j ? 0.0 : 1.0 / 9.0, 1e-7);
  const Matrix counts = negative_counts(x, y, 0, 10, o, 3, 1000);
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(counts[i][i], 0.0);
  const Matrix expected = reference_weights(x, y, 0, 10, o);
  const FitStatistics fit = goodness_of_fit(counts, expected);
  EXPECT_LT(fit.chi_square, fit.dof + 5.0 * std::sqrt(2.0 * fit.dof));
}

TEST(DistanceWeightedSampling, SameTripletsHoweverTheAnchorsAreSplit) {
  const SamplingOptions o;
  const torch::Tensor x = random_unit_rows(40, 16, 9);
  const torch::Tensor y = block_labels({5, 2, 7, 1, 0, 3, 9, 8}, 5);
  for (uint64_t step : {0ULL, 1ULL, 1000ULL}) {
    const Triplets all = sample_triplets(x, y, 0, 40, o, 123, step);
    for (int64_t parts : {2, 4}) {
      std::vector<torch::Tensor> a, p, n;
      for (int64_t r = 0; r < parts; ++r) {
        const Triplets t = sample_triplets(x, y, r * 40 / parts, 40 / parts, o, 123, step);
        a.push_back(t.anchor);
        p.push_back(t.positive);
        n.push_back(t.negative);
      }
      EXPECT_TRUE(torch::equal(torch::cat(a), all.anchor));
      EXPECT_TRUE(torch::equal(torch::cat(p), all.positive));
      EXPECT_TRUE(torch::equal(torch::cat(n), all.negative)) << "step " << step << " parts " << parts;
    }
  }
  // A different step or seed changes the draws (the key is really used).
  EXPECT_FALSE(torch::equal(sample_triplets(x, y, 0, 40, o, 123, 0).negative,
                            sample_triplets(x, y, 0, 40, o, 123, 1).negative));
  EXPECT_FALSE(torch::equal(sample_triplets(x, y, 0, 40, o, 123, 0).negative,
                            sample_triplets(x, y, 0, 40, o, 124, 0).negative));
}

TEST(DistanceWeightedSampling, ReducedPrecisionInputsAreWeightedInFloat32) {
  const SamplingOptions o;
  const torch::Tensor x = random_unit_rows(20, 32, 12);
  const torch::Tensor y = block_labels({0, 1, 2, 3}, 5);
  for (auto type : {torch::kBFloat16, torch::kFloat16, torch::kFloat64}) {
    const torch::Tensor xr = x.to(type).requires_grad_(true);
    const torch::Tensor w = negative_weights(xr, y, 0, 20, o);
    EXPECT_EQ(w.scalar_type(), torch::kFloat32);
    EXPECT_FALSE(w.requires_grad());
    expect_weights_near(w, reference_weights(xr.detach().to(torch::kFloat64), y, 0, 20, o), 1e-3, 1e-6);
    const Triplets t = sample_triplets(xr, y, 0, 20, o, 1, 1);
    EXPECT_EQ(t.negative.numel(), 80);
  }
}

TEST(DistanceWeightedSampling, RejectsInconsistentInputs) {
  const SamplingOptions o;
  const torch::Tensor x = random_unit_rows(20, 4, 1);
  const torch::Tensor y = block_labels({0, 1, 2, 3}, 5);
  EXPECT_THROW(sample_triplets(x.narrow(0, 0, 18), y.narrow(0, 0, 18), 0, 15, o, 1, 1), Error);  // N % k
  EXPECT_THROW(sample_triplets(x, y, 3, 5, o, 1, 1), Error);                                      // misaligned
  EXPECT_THROW(sample_triplets(x, y, 10, 15, o, 1, 1), Error);                                    // past N
  EXPECT_THROW(sample_triplets(x, y.narrow(0, 0, 15), 0, 5, o, 1, 1), Error);                     // labels size
  EXPECT_THROW(sample_triplets(x, y.to(torch::kInt32), 0, 5, o, 1, 1), Error);                    // labels dtype
  SamplingOptions k1 = o;
  k1.blocks.batch_k = 1;
  EXPECT_THROW(sample_triplets(x, y, 0, 5, k1, 1, 1), Error);
  const Triplets none = sample_triplets(x, y, 20, 0, o, 1, 1);
  EXPECT_EQ(none.anchor.numel(), 0);
  EXPECT_EQ(none.negative.numel(), 0);
}

}  // namespace
}  // namespace dml
