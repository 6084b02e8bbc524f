// The four update rules against an independent NumPy implementation (optim_scenario.h), and
// Adam's epsilon placement against torch::optim::Adam.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dml/optim/optimizer.h"
#include "optim_scenario.h"

namespace dml {
namespace {

using test::Scenario;

// Non-default hyper-parameters chosen so that each detail of a rule is visible in the result:
// eps 1e-3 makes eps placement (inside/outside sqrt, before/after bias correction) matter, wd 0.05
// with rescale 0.5 makes coupled vs decoupled decay and the rescale order matter.
OptimizerOptions test_options(OptimizerKind kind) {
  OptimizerOptions o;
  o.kind = kind;
  o.lr = 0.01;
  o.weight_decay = 0.05;
  o.rescale_grad = 0.5;
  o.beta1 = 0.8;
  o.beta2 = 0.95;
  o.epsilon = 1e-3;
  o.momentum = 0.7;
  o.rmsprop_gamma = 0.8;
  o.rmsprop_epsilon = 1e-3;
  return o;
}

// Runs the scenario with our optimiser and compares with NumPy; returns the largest difference.
double max_diff_to_numpy(const OptimizerOptions& options, torch::ScalarType dtype) {
  Scenario sc;
  auto params = test::make_params(sc, dtype);
  Optimizer opt(test::make_groups(sc, params), options);
  test::run_steps(sc, opt, params, 0, sc.num_steps);
  auto expected = test::numpy_reference(test::scenario_json(sc, options, dtype));
  EXPECT_EQ(expected.size(), params.size());
  double worst = 0;
  for (size_t p = 0; p < params.size() && p < expected.size(); ++p) {
    auto ours = params[p].detach().to(torch::kFloat64).reshape({-1});
    // The run must have moved the parameter, or the comparison proves nothing.
    EXPECT_GT((ours - sc.init(p, torch::kFloat64).reshape({-1})).abs().max().item<double>(), 1e-4) << p;
    worst = std::max(worst, (ours - expected[p]).abs().max().item<double>());
  }
  return worst;
}

class OptimizerVsNumpy : public ::testing::TestWithParam<OptimizerKind> {};

TEST_P(OptimizerVsNumpy, Float64MatchesToRounding) {
  EXPECT_LT(max_diff_to_numpy(test_options(GetParam()), torch::kFloat64), 1e-13);
}

TEST_P(OptimizerVsNumpy, Float32MatchesToRounding) {
  // Parameters are O(1): float32 rounding differences of a few ulp (~1e-7) are expected.
  EXPECT_LT(max_diff_to_numpy(test_options(GetParam()), torch::kFloat32), 5e-7);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, OptimizerVsNumpy,
                         ::testing::Values(OptimizerKind::kAdam, OptimizerKind::kSgd, OptimizerKind::kAdamW,
                                           OptimizerKind::kRmsProp),
                         [](const auto& info) { return optimizer_name(info.param); });

TEST(Optimizer, PlainSgdWithoutMomentumMatchesNumpy) {
  auto o = test_options(OptimizerKind::kSgd);
  o.momentum = 0;
  EXPECT_LT(max_diff_to_numpy(o, torch::kFloat64), 1e-13);
}

TEST(Optimizer, ReferenceDefaultsMatchNumpy) {
  // Defaults as the trainer uses them: rescale 1/70, wd 1e-4, eps 1e-7.
  OptimizerOptions o;
  o.rescale_grad = 1.0 / 70;
  o.lr = 0.01;
  EXPECT_LT(max_diff_to_numpy(o, torch::kFloat64), 1e-13);
  o.kind = OptimizerKind::kSgd;
  EXPECT_LT(max_diff_to_numpy(o, torch::kFloat64), 1e-13);
}

TEST(Optimizer, LrMultScalesOnlyItsGroup) {
  // Plain SGD, no decay: w1 - w0 = -lr * lr_mult * g exactly in float64 for g = 1.
  OptimizerOptions o;
  o.kind = OptimizerKind::kSgd;
  o.momentum = 0;
  o.weight_decay = 0;
  o.lr = 0.5;
  auto a = torch::zeros({2}, torch::kFloat64).requires_grad_(true);
  auto b = torch::zeros({2}, torch::kFloat64).requires_grad_(true);
  Optimizer opt({{"full", {a}, 1.0}, {"slow", {b}, 0.25}}, o);
  a.mutable_grad() = torch::ones({2}, torch::kFloat64);
  b.mutable_grad() = torch::ones({2}, torch::kFloat64);
  opt.step();
  EXPECT_EQ(a[0].item<double>(), -0.5);
  EXPECT_EQ(b[0].item<double>(), -0.125);
}

TEST(Optimizer, SkipsParamsWithoutGradAndCountsPerParameter) {
  OptimizerOptions o;  // Adam
  auto a = torch::ones({3}).requires_grad_(true);
  auto b = torch::ones({3}).requires_grad_(true);
  Optimizer opt({{"g", {a, b}, 1.0}}, o);
  a.mutable_grad() = torch::ones({3});
  opt.step();
  opt.step();
  EXPECT_TRUE(torch::equal(b, torch::ones({3})));  // never had a gradient: untouched
  EXPECT_FALSE(torch::equal(a, torch::ones({3})));
  EXPECT_EQ(opt.num_updates(), 2);
  opt.zero_grad();
  EXPECT_TRUE(torch::equal(a.grad(), torch::zeros({3})));
  EXPECT_FALSE(b.grad().defined());
}

TEST(Optimizer, AdamEpsilonPlacementDiffersFromLibTorch) {
  // Tiny gradients (1e-7, the scale the reference's 1/B rescale produces for weakly-used weights):
  // eps 1e-7 on the uncorrected sqrt(v) (ours, MXNet) vs on the corrected one (LibTorch) then
  // gives different step sizes.
  const int64_t n = 8;
  auto init = test::fixed_uniform(7, 0, n, 0.05, 0.15).to(torch::kFloat32);
  auto ours = init.clone().requires_grad_(true);
  auto theirs = init.clone().requires_grad_(true);
  OptimizerOptions o;
  o.lr = 1e-3;
  o.weight_decay = 0;
  o.epsilon = 1e-7;
  Optimizer opt({{"w", {ours}, 1.0}}, o);
  torch::optim::Adam torch_adam({theirs}, torch::optim::AdamOptions(1e-3).eps(1e-7).weight_decay(0));

  std::ostringstream grads_json;
  grads_json.precision(17);
  for (int s = 0; s < 5; ++s) {
    auto g = (test::fixed_uniform(8, s, n, -1.0, 1.0) * 1e-7).to(torch::kFloat32);
    ours.mutable_grad() = g.clone();
    theirs.mutable_grad() = g.clone();
    opt.step();
    torch_adam.step();
    grads_json << (s ? ", " : "") << "{\"lr\": 0.001, \"grads\": [" << test::json_list(g) << "]}";
  }
  const double torch_diff = (ours - theirs).abs().max().item<double>();
  EXPECT_GT(torch_diff, 1e-4) << "LibTorch Adam and ours should differ measurably";

  // Our float32 run against the float64 NumPy reference.
  std::ostringstream spec;
  spec.precision(17);
  spec << "{\"kind\": \"adam\", \"dtype\": \"float64\", \"wd\": 0, \"rescale\": 1, \"b1\": 0.9, \"b2\": 0.999, "
       << "\"eps\": 1e-7, \"momentum\": 0, \"gamma\": 0, \"rms_eps\": 0, \"lr_mult\": [1], \"init\": ["
       << test::json_list(init) << "], \"steps\": [" << grads_json.str() << "]}";
  auto expected = test::numpy_reference(spec.str());
  ASSERT_EQ(expected.size(), 1u);
  const double ref_diff = (ours.detach().to(torch::kFloat64) - expected[0]).abs().max().item<double>();
  EXPECT_LT(ref_diff, 1e-7);
  std::printf("[adam] max |ours - libtorch| = %.3g, max |ours - numpy| = %.3g after 5 steps\n", torch_diff,
              ref_diff);
}

TEST(Optimizer, ParseOptimizerNamesAndErrors) {
  EXPECT_EQ(parse_optimizer("adam"), OptimizerKind::kAdam);
  EXPECT_EQ(parse_optimizer("sgd"), OptimizerKind::kSgd);
  EXPECT_EQ(parse_optimizer("adamw"), OptimizerKind::kAdamW);
  EXPECT_EQ(parse_optimizer("rmsprop"), OptimizerKind::kRmsProp);
  for (auto kind : {OptimizerKind::kAdam, OptimizerKind::kSgd, OptimizerKind::kAdamW, OptimizerKind::kRmsProp}) {
    EXPECT_EQ(parse_optimizer(optimizer_name(kind)), kind);
  }
  try {
    parse_optimizer("adagrad");
    FAIL() << "adagrad accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("adagrad"), std::string::npos);
    EXPECT_NE(message.find("adam, sgd, adamw, rmsprop"), std::string::npos) << message;
  }
}

TEST(Optimizer, RejectsInvalidOptions) {
  auto w = torch::zeros({2}).requires_grad_(true);
  OptimizerOptions o;
  o.beta1 = 1.0;
  EXPECT_THROW(Optimizer({{"g", {w}, 1.0}}, o), Error);
  o = OptimizerOptions();
  o.rescale_grad = 0;
  EXPECT_THROW(Optimizer({{"g", {w}, 1.0}}, o), Error);
  EXPECT_THROW(Optimizer({{"g", {w}, -1.0}}, OptimizerOptions()), Error);
  EXPECT_THROW(Optimizer({{"g", {torch::Tensor()}, 1.0}}, OptimizerOptions()), Error);
  Optimizer ok({{"g", {w}, 1.0}}, OptimizerOptions());
  EXPECT_THROW(ok.set_lr(-1), Error);
}

}  // namespace
}  // namespace dml
