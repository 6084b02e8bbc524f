#include <gtest/gtest.h>

#include "dml/cli/options.h"
#include "parse_helpers.h"
#include "dml/cli/train_config.h"
#include "dml/util/error.h"

namespace dml {
namespace {

TrainOptions parse(std::vector<std::string> args) { return test::parse_flags(std::move(args)); }

// One flag sets each shared value: the sampler's and the loss's block layout, the crop of training and
// evaluation, beta's optimiser from --lr-beta and --momentum.
TEST(TrainConfig, OneFlagSetsEverySideOfASharedValue) {
  const TrainConfig c = make_train_config(parse({"--batch-k", "4", "--batch-size", "40", "--crop-size", "28",
                                                 "--lr-beta", "0.05", "--momentum", "0.8", "--seed", "9",
                                                 "--gpus", "cpu", "--cpu-replicas", "2"}),
                                          /*local_rank=*/0);
  EXPECT_EQ(c.batches.blocks.batch_k, 4);
  EXPECT_EQ(c.sampling.blocks.batch_k, 4);
  EXPECT_EQ(c.batches.batch_size, 40);
  EXPECT_EQ(c.augment.crop_size, 28);
  EXPECT_TRUE(c.augment.train);
  EXPECT_EQ(c.eval.crop_size, 28);
  EXPECT_EQ(c.eval.seed, 9u);
  EXPECT_EQ(c.eval.batch_size, 64);  // forward-only batches are at least 64
  EXPECT_TRUE(c.loss.learn_beta);
  EXPECT_EQ(c.beta_optimizer.kind, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(c.beta_optimizer.lr, 0.05);
  EXPECT_DOUBLE_EQ(c.beta_optimizer.momentum, 0.8);
  EXPECT_DOUBLE_EQ(c.beta_optimizer.weight_decay, 0.0);
  ASSERT_EQ(c.devices.size(), 2u);
  EXPECT_TRUE(c.devices[0].is_cpu() && c.devices[1].is_cpu());
}

TEST(TrainConfig, NonPositiveLrBetaFixesBeta) {
  const TrainConfig c = make_train_config(parse({"--lr-beta", "0", "--gpus", ""}), 0);
  EXPECT_FALSE(c.loss.learn_beta);
  EXPECT_EQ(c.network_optimizer.kind, OptimizerKind::kAdam);
}

TEST(TrainConfig, RunTimeOptionErrorsNameTheFlag) {
  EXPECT_EQ(describe_error(OptionError("crop_size", "crop size 40 does not fit")), "--crop-size: crop size 40 does not fit");
  EXPECT_EQ(describe_error(OptionError("unmapped_field", "text")), "text");
  EXPECT_EQ(describe_error(Error("plain")), "plain");
}

}  // namespace
}  // namespace dml
