// Margin loss: values against NumPy, gradients against finite differences (double), the analytic beta
// gradient, the active count, the zero-divisor case and the fixed-beta mode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "dml/loss/margin_loss.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml {
namespace {

std::string to_text(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat64).contiguous().view({-1});
  std::ostringstream out;
  out.precision(17);
  for (int64_t i = 0; i < c.numel(); ++i) out << (i ? "," : "") << c[i].item<double>();
  return out.str();
}

// A small batch: 12 rows in 3 class blocks of 4 (labels 2, 0, 1), 5-d unit rows, 24 random triplets
// with same-block positives and other-class negatives (repeats allowed).
struct Case {
  torch::Tensor x, labels;
  Triplets triplets;
};

Case make_case(uint64_t seed, torch::ScalarType type) {
  torch::manual_seed(seed);
  Case c;
  torch::Tensor x = torch::randn({12, 5}, torch::kFloat64);
  c.x = (x / x.norm(2, 1, true)).to(type);
  c.labels = torch::tensor(std::vector<int64_t>{2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1});
  std::vector<int64_t> a, p, n;
  for (int64_t t = 0; t < 24; ++t) {
    const int64_t anchor = t / 2, block = anchor / 4 * 4;
    a.push_back(anchor);
    p.push_back(block + (anchor - block + 1 + torch::randint(3, {1}).item<int64_t>()) % 4);
    n.push_back((block + 4 + torch::randint(8, {1}).item<int64_t>()) % 12);
  }
  c.triplets = Triplets{torch::tensor(a), torch::tensor(p), torch::tensor(n)};
  return c;
}

std::vector<double> numpy_loss(const Case& c, const torch::Tensor& beta, double margin, double nu) {
  // Independent NumPy computation: tests/loss/python/margin_loss_reference.py.
  const auto r = test::run_python_file(
      "tests/loss/python/margin_loss_reference.py",
      {to_text(c.x), std::to_string(c.x.size(1)), to_text(c.labels), to_text(c.triplets.anchor),
       to_text(c.triplets.positive), to_text(c.triplets.negative), to_text(beta.detach()), std::to_string(margin),
       std::to_string(nu)});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::istringstream in(r.output);
  std::vector<double> values;
  double v = 0;
  while (in >> v) values.push_back(v);
  EXPECT_EQ(values.size(), 4 + static_cast<size_t>(beta.numel())) << r.output;
  return values;
}

void set_beta(MarginLoss& loss, const std::vector<double>& values) {
  torch::NoGradGuard no_grad;
  loss->beta().copy_(torch::tensor(values));
}

TEST(MarginLoss, TermsAndGradientOfBetaMatchNumPy) {
  const Case c = make_case(1, torch::kFloat32);
  MarginLossOptions o;
  o.num_classes = 4;
  o.nu = 0.05;
  for (double margin : {0.2, 0.35}) {
    o.margin = margin;
    MarginLoss loss(o);
    set_beta(loss, {0.95, 1.05, 1.2, 1.4});  // class 3 never appears: its gradient must stay 0
    const torch::Tensor x = c.x.clone().requires_grad_(true);
    const auto terms = loss->terms(x, c.labels, c.triplets);
    EXPECT_EQ(terms.hinge_sum.scalar_type(), torch::kFloat32);
    EXPECT_EQ(terms.hinge_sum.dim(), 0);
    EXPECT_FALSE(terms.active_count.requires_grad());
    const torch::Tensor value = MarginLossImpl::normalise(terms, terms.active_count);
    value.backward();
    const std::vector<double> ref = numpy_loss(c, loss->beta(), margin, o.nu);
    ASSERT_EQ(ref.size(), 8u);
    EXPECT_NEAR(terms.hinge_sum.item<double>(), ref[0], 1e-5 * ref[0]);
    EXPECT_NEAR(terms.beta_reg.item<double>(), ref[1], 1e-6 * ref[1]);
    EXPECT_EQ(terms.active_count.item<double>(), ref[2]);
    ASSERT_GT(ref[2], 5.0);  // a mix of active and inactive terms
    ASSERT_LT(ref[2], 43.0);
    EXPECT_NEAR(value.item<double>(), ref[3], 1e-5 * ref[3]);
    for (int64_t cls = 0; cls < 4; ++cls)
      EXPECT_NEAR(loss->beta().grad()[cls].item<double>(), ref[4 + cls], 1e-6) << "class " << cls;
    EXPECT_TRUE(x.grad().defined());
  }
}

// L as a function of (x, beta) in double precision, for finite differences.
double loss_value(MarginLoss& loss, const Case& c, const torch::Tensor& x, double* count = nullptr) {
  torch::NoGradGuard no_grad;
  const auto terms = loss->terms(x, c.labels, c.triplets);
  if (count != nullptr) *count = terms.active_count.item<double>();
  return MarginLossImpl::normalise(terms, terms.active_count).item<double>();
}

TEST(MarginLoss, GradientsMatchFiniteDifferencesInDoublePrecision) {
  const Case c = make_case(2, torch::kFloat64);
  MarginLossOptions o;
  o.num_classes = 3;
  o.nu = 0.1;
  MarginLoss loss(o);
  loss->to(torch::kFloat64);
  set_beta(loss, {1.0, 1.15, 1.3});
  const torch::Tensor x = c.x.clone().requires_grad_(true);
  const auto terms = loss->terms(x, c.labels, c.triplets);
  EXPECT_EQ(terms.hinge_sum.scalar_type(), torch::kFloat64);
  MarginLossImpl::normalise(terms, terms.active_count).backward();
  const double count = terms.active_count.item<double>();
  ASSERT_GT(count, 5.0);

  const double h = 1e-6;
  const torch::Tensor xd = c.x.clone();
  for (int64_t i = 0; i < xd.size(0); ++i) {
    for (int64_t j = 0; j < xd.size(1); ++j) {
      const double saved = xd[i][j].item<double>();
      double count_plus = 0, count_minus = 0;
      xd[i][j] = saved + h;
      const double plus = loss_value(loss, c, xd, &count_plus);
      xd[i][j] = saved - h;
      const double minus = loss_value(loss, c, xd, &count_minus);
      xd[i][j] = saved;
      ASSERT_EQ(count_plus, count);  // no hinge crosses its kink within +-h
      ASSERT_EQ(count_minus, count);
      EXPECT_NEAR(x.grad()[i][j].item<double>(), (plus - minus) / (2 * h), 1e-7) << "x[" << i << "][" << j << "]";
    }
  }
  for (int64_t cls = 0; cls < 3; ++cls) {
    torch::Tensor beta = loss->beta();
    const double saved = beta[cls].item<double>();
    double plus = 0, minus = 0;
    {
      torch::NoGradGuard no_grad;
      beta[cls] = saved + h;
    }
    plus = loss_value(loss, c, xd);
    {
      torch::NoGradGuard no_grad;
      beta[cls] = saved - h;
    }
    minus = loss_value(loss, c, xd);
    {
      torch::NoGradGuard no_grad;
      beta[cls] = saved;
    }
    EXPECT_NEAR(beta.grad()[cls].item<double>(), (plus - minus) / (2 * h), 1e-7) << "beta[" << cls << "]";
  }
}

// Hand-derived: 2-d points, beta 1.2, margin 0.2 -> pos = max(d_ap - 1, 0), neg = max(1.4 - d_an, 0).
TEST(MarginLoss, ActiveCountCountsStrictlyPositiveHingeTerms) {
  const double s = std::sqrt(2.0), r = 2.0 * std::sin(0.25);  // |x0-x1| = sqrt2, |x0-x3| = 2 sin(0.25)
  const torch::Tensor x =
      torch::tensor({1.0, 0.0, 0.0, 1.0, -1.0, 0.0, std::cos(0.5), std::sin(0.5)}, torch::kFloat32).view({4, 2});
  const torch::Tensor labels = torch::tensor(std::vector<int64_t>{0, 0, 1, 0});
  const Triplets t{torch::tensor(std::vector<int64_t>{0, 0, 0}), torch::tensor(std::vector<int64_t>{1, 3, 1}),
                   torch::tensor(std::vector<int64_t>{2, 1, 3})};
  MarginLossOptions o;
  o.num_classes = 2;
  MarginLoss loss(o);
  const auto terms = loss->terms(x, labels, t);
  // (0,1,2): pos sqrt2-1 > 0, neg 1.4-2 < 0; (0,3,1): pos r-1 < 0, neg 1.4-sqrt2 < 0; (0,1,3): both > 0.
  EXPECT_EQ(terms.active_count.item<double>(), 3.0);
  const double hinge = 2 * (s - 1.0) + (1.4 - r);
  EXPECT_NEAR(terms.hinge_sum.item<double>(), hinge, 1e-5);
  EXPECT_NEAR(MarginLossImpl::normalise(terms, terms.active_count).item<double>(), hinge / 3.0, 1e-6);
  // A global count from other replicas divides this replica's terms.
  EXPECT_NEAR(MarginLossImpl::normalise(terms, torch::scalar_tensor(10.0)).item<double>(), hinge / 10.0, 1e-6);
}

TEST(MarginLoss, ZeroActiveCountGivesZeroLossAndZeroGradients) {
  // Positives at distance 0.1, negatives at 2: with beta 1.2, margin 0.2 nothing is active; nu > 0.
  const torch::Tensor x =
      torch::tensor({1.0, 0.0, std::cos(0.1), std::sin(0.1), -1.0, 0.0}, torch::kFloat32).view({3, 2});
  const torch::Tensor xg = x.clone().requires_grad_(true);
  const torch::Tensor labels = torch::tensor(std::vector<int64_t>{0, 0, 1});
  const Triplets t{torch::tensor(std::vector<int64_t>{0, 1}), torch::tensor(std::vector<int64_t>{1, 0}),
                   torch::tensor(std::vector<int64_t>{2, 2})};
  MarginLossOptions o;
  o.num_classes = 2;
  o.nu = 0.3;
  MarginLoss loss(o);
  const auto terms = loss->terms(xg, labels, t);
  EXPECT_EQ(terms.active_count.item<double>(), 0.0);
  EXPECT_GT(terms.beta_reg.item<double>(), 0.0);  // the regulariser exists but is dropped
  const torch::Tensor value = MarginLossImpl::normalise(terms, terms.active_count);
  EXPECT_EQ(value.item<double>(), 0.0);
  value.backward();
  EXPECT_TRUE(torch::isfinite(xg.grad()).all().item<bool>());
  EXPECT_EQ(xg.grad().abs().max().item<double>(), 0.0);
  EXPECT_EQ(loss->beta().grad().abs().max().item<double>(), 0.0);
}

TEST(MarginLoss, FixedBetaWhenNotLearned) {
  const Case c = make_case(3, torch::kFloat32);
  MarginLossOptions o;
  o.num_classes = 3;
  o.learn_beta = false;
  o.beta_init = 1.1;
  o.nu = 0.5;  // ignored without a learned beta
  MarginLoss loss(o);
  EXPECT_TRUE(loss->parameters().empty());
  EXPECT_FALSE(loss->beta().requires_grad());
  EXPECT_DOUBLE_EQ(loss->beta().item<double>(), static_cast<double>(1.1f));
  const torch::Tensor x = c.x.clone().requires_grad_(true);
  const auto terms = loss->terms(x, c.labels, c.triplets);
  EXPECT_EQ(terms.beta_reg.item<double>(), 0.0);
  const std::vector<double> ref = numpy_loss(c, torch::full({3}, 1.1, torch::kFloat64), o.margin, /*nu=*/0.0);
  ASSERT_EQ(ref.size(), 7u);
  EXPECT_NEAR(terms.hinge_sum.item<double>(), ref[0], 1e-5 * ref[0]);
  EXPECT_EQ(terms.active_count.item<double>(), ref[2]);
  const torch::Tensor value = MarginLossImpl::normalise(terms, terms.active_count);
  EXPECT_NEAR(value.item<double>(), ref[3], 1e-5 * ref[3]);
  value.backward();
  EXPECT_GT(x.grad().abs().max().item<double>(), 0.0);
}

TEST(MarginLoss, LearnedBetaIsAParameterInitialisedPerClass) {
  MarginLossOptions o;
  o.num_classes = 7;
  o.beta_init = 0.8;
  MarginLoss loss(o);
  const auto named = loss->named_parameters();
  ASSERT_EQ(named.size(), 1u);
  EXPECT_TRUE(named.contains("beta"));
  EXPECT_EQ(loss->beta().sizes(), (std::vector<int64_t>{7}));
  EXPECT_TRUE(loss->beta().requires_grad());
  EXPECT_TRUE(torch::allclose(loss->beta(), torch::full({7}, 0.8f)));
}

TEST(MarginLoss, HalfPrecisionEmbeddingsGiveFloat32Terms) {
  const Case c = make_case(4, torch::kFloat32);
  MarginLoss loss(MarginLossOptions{});
  const torch::Tensor xh = c.x.to(torch::kBFloat16).requires_grad_(true);
  const auto terms = loss->terms(xh, c.labels, c.triplets);
  EXPECT_EQ(terms.hinge_sum.scalar_type(), torch::kFloat32);
  const auto ref_terms = loss->terms(xh.detach().to(torch::kFloat32), c.labels, c.triplets);
  EXPECT_EQ(terms.hinge_sum.item<double>(), ref_terms.hinge_sum.item<double>());
  MarginLossImpl::normalise(terms, terms.active_count).backward();
  EXPECT_EQ(xh.grad().scalar_type(), torch::kBFloat16);
}

TEST(MarginLoss, RejectsMalformedInputs) {
  const Case c = make_case(5, torch::kFloat32);
  MarginLoss loss(MarginLossOptions{});
  EXPECT_THROW(loss->terms(c.x.view({-1}), c.labels, c.triplets), Error);
  EXPECT_THROW(loss->terms(c.x, c.labels.narrow(0, 0, 5), c.triplets), Error);
  Triplets bad = c.triplets;
  bad.negative = bad.negative.narrow(0, 0, 3);
  EXPECT_THROW(loss->terms(c.x, c.labels, bad), Error);
  MarginLossOptions zero;
  zero.num_classes = 0;
  EXPECT_THROW(MarginLoss{zero}, Error);
}

}  // namespace
}  // namespace dml
