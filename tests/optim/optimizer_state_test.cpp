// save/load: an interrupted run continues bit-identically to an uninterrupted one.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "dml/optim/optimizer.h"
#include "optim_scenario.h"

namespace dml {
namespace {

using test::Scenario;

OptimizerOptions options_for(OptimizerKind kind, double momentum) {
  OptimizerOptions o;
  o.kind = kind;
  o.lr = 0.01;
  o.weight_decay = 0.01;
  o.rescale_grad = 1.0 / 70;
  o.momentum = momentum;
  return o;
}

struct ResumeCase {
  OptimizerKind kind;
  double momentum;
};

class OptimizerResume : public ::testing::TestWithParam<ResumeCase> {};

TEST_P(OptimizerResume, SaveLoadContinueIsBitIdentical) {
  const Scenario sc;
  const auto options = options_for(GetParam().kind, GetParam().momentum);
  const int split = 3;  // after the skipped-gradient step, before the lr change

  auto straight = test::make_params(sc, torch::kFloat32);
  Optimizer straight_opt(test::make_groups(sc, straight), options);
  test::run_steps(sc, straight_opt, straight, 0, sc.num_steps);

  auto first = test::make_params(sc, torch::kFloat32);
  Optimizer first_opt(test::make_groups(sc, first), options);
  test::run_steps(sc, first_opt, first, 0, split);
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    first_opt.save(archive, "optimizer_net");
    archive.save_to(buffer);
  }

  // A new process would rebuild parameters from the model checkpoint: copy the values only.
  std::vector<torch::Tensor> resumed;
  for (const auto& p : first) resumed.push_back(p.detach().clone().requires_grad_(true));
  auto other_options = options;
  other_options.lr = 123.0;  // must be replaced by the saved lr
  Optimizer resumed_opt(test::make_groups(sc, resumed), other_options);
  torch::serialize::InputArchive archive;
  archive.load_from(buffer);
  resumed_opt.load(archive, "optimizer_net");
  EXPECT_EQ(resumed_opt.lr(), sc.lr_at(split - 1));
  EXPECT_EQ(resumed_opt.num_updates(), first_opt.num_updates());
  test::run_steps(sc, resumed_opt, resumed, split, sc.num_steps);

  EXPECT_EQ(resumed_opt.num_updates(), straight_opt.num_updates());
  for (size_t p = 0; p < straight.size(); ++p) {
    EXPECT_TRUE(torch::equal(resumed[p], straight[p])) << "param " << p;
    EXPECT_FALSE(torch::equal(resumed[p], sc.init(p, torch::kFloat32))) << "param " << p << " never moved";
  }

  // Control: without load the continuation differs (so the state really matters).
  std::vector<torch::Tensor> fresh;
  for (const auto& p : first) fresh.push_back(p.detach().clone().requires_grad_(true));
  Optimizer fresh_opt(test::make_groups(sc, fresh), options);
  test::run_steps(sc, fresh_opt, fresh, split, sc.num_steps);
  if (!(GetParam().kind == OptimizerKind::kSgd && GetParam().momentum == 0)) {
    EXPECT_FALSE(torch::equal(fresh[0], straight[0]));
  }
}

INSTANTIATE_TEST_SUITE_P(AllKinds, OptimizerResume,
                         ::testing::Values(ResumeCase{OptimizerKind::kAdam, 0.9}, ResumeCase{OptimizerKind::kSgd, 0.9},
                                           ResumeCase{OptimizerKind::kSgd, 0.0}, ResumeCase{OptimizerKind::kAdamW, 0.9},
                                           ResumeCase{OptimizerKind::kRmsProp, 0.9}),
                         [](const auto& info) {
                           return optimizer_name(info.param.kind) + (info.param.momentum == 0 ? "_no_momentum" : "");
                         });

TEST(OptimizerState, TwoOptimizersShareOneArchive) {
  // The trainer's layout: network Adam and beta SGD under "optim/network/" and "optim/beta/".
  const Scenario sc;
  auto params = test::make_params(sc, torch::kFloat32);
  auto beta = torch::full({4}, 1.2).requires_grad_(true);
  Optimizer net(test::make_groups(sc, params), options_for(OptimizerKind::kAdam, 0.9));
  OptimizerOptions beta_options = options_for(OptimizerKind::kSgd, 0.9);
  beta_options.weight_decay = 0;
  Optimizer beta_opt({{"beta", {beta}, 1.0}}, beta_options);
  test::run_steps(sc, net, params, 0, 2);
  beta.mutable_grad() = torch::tensor({1.f, -2.f, 0.5f, 0.f});
  beta_opt.step();
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    net.save(archive, "optim/network/");
    beta_opt.save(archive, "optim/beta/");
    archive.save_to(buffer);
  }
  std::vector<torch::Tensor> params2;
  for (const auto& p : params) params2.push_back(p.detach().clone().requires_grad_(true));
  auto beta2 = beta.detach().clone().requires_grad_(true);
  Optimizer net2(test::make_groups(sc, params2), options_for(OptimizerKind::kAdam, 0.9));
  Optimizer beta_opt2({{"beta", {beta2}, 1.0}}, beta_options);
  torch::serialize::InputArchive archive;
  archive.load_from(buffer);
  beta_opt2.load(archive, "optim/beta");  // same prefix without the trailing slash
  net2.load(archive, "optim/network/");
  test::run_steps(sc, net, params, 2, 4);
  test::run_steps(sc, net2, params2, 2, 4);
  beta2.mutable_grad() = beta.grad().clone();
  beta_opt.step();
  beta_opt2.step();
  for (size_t p = 0; p < params.size(); ++p) EXPECT_TRUE(torch::equal(params[p], params2[p])) << p;
  EXPECT_TRUE(torch::equal(beta, beta2));
}

TEST(OptimizerState, LoadRejectsOtherKindAndOtherLayout) {
  const Scenario sc;
  auto params = test::make_params(sc, torch::kFloat32);
  Optimizer adam(test::make_groups(sc, params), options_for(OptimizerKind::kAdam, 0.9));
  test::run_steps(sc, adam, params, 0, 2);
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    adam.save(archive, "net");
    archive.save_to(buffer);
  }
  auto expect_load_error = [&](Optimizer& opt, const std::string& prefix, const std::string& needle) {
    buffer.clear();
    buffer.seekg(0);
    torch::serialize::InputArchive archive;
    archive.load_from(buffer);
    try {
      opt.load(archive, prefix);
      ADD_FAILURE() << "load accepted a mismatching checkpoint";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Optimizer sgd(test::make_groups(sc, params), options_for(OptimizerKind::kSgd, 0.9));
  expect_load_error(sgd, "net", "--optimizer");
  Optimizer fewer({{"net", {params[0]}, 1.0}}, options_for(OptimizerKind::kAdam, 0.9));
  expect_load_error(fewer, "net", "parameter groups");
  auto wrong_shape = test::make_groups(sc, params);
  wrong_shape[1].params[0] = torch::zeros({7}).requires_grad_(true);
  Optimizer shaped(wrong_shape, options_for(OptimizerKind::kAdam, 0.9));
  expect_load_error(shaped, "net", "shape");
  // A failed load leaves the optimizer as it was.
  EXPECT_EQ(shaped.num_updates(), 0);
  expect_load_error(sgd, "beta", "missing");
}

}  // namespace
}  // namespace dml
