#include <gtest/gtest.h>

#include <fstream>

#include "dml/cli/options.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml {
namespace {

TrainOptions parse(std::vector<std::string> args) {
  args.insert(args.begin(), "dist_train");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  TrainOptions o;
  EXPECT_TRUE(parse_options(static_cast<int>(argv.size()), argv.data(), o));
  return o;
}

std::string parse_error(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The reference example's defaults (train.py argparse), written out independently of options.h.
TEST(ParseOptions, DefaultsAreTheReferenceDefaults) {
  const TrainOptions o = parse({});
  EXPECT_EQ(o.data.data_path, "data/CUB_200_2011");
  EXPECT_EQ(o.model.embed_dim, 128);
  EXPECT_EQ(o.run.batch_size, 70);
  EXPECT_EQ(o.objective.batch_k, 5);
  EXPECT_EQ(o.run.epochs, 20);
  EXPECT_EQ(o.optim.optimizer, "adam");
  EXPECT_DOUBLE_EQ(o.optim.lr, 1e-4);
  EXPECT_DOUBLE_EQ(o.optim.lr_beta, 0.1);
  EXPECT_DOUBLE_EQ(o.objective.margin, 0.2);
  EXPECT_DOUBLE_EQ(o.objective.beta, 1.2);
  EXPECT_DOUBLE_EQ(o.objective.nu, 0.0);
  EXPECT_DOUBLE_EQ(o.optim.factor, 0.5);
  EXPECT_EQ(o.optim.steps, (std::vector<int64_t>{12, 14, 16, 18}));
  EXPECT_DOUBLE_EQ(o.optim.wd, 1e-4);
  EXPECT_EQ(o.run.seed, 123u);
  EXPECT_EQ(o.model.model, "resnet50_v2");
  EXPECT_EQ(o.run.save_model_prefix, "margin_loss_model");
  EXPECT_FALSE(o.model.use_pretrained);
  EXPECT_EQ(o.run.kvstore, "device");
  EXPECT_EQ(o.run.log_interval, 20);
  EXPECT_EQ(o.run.iterations_per_epoch, 200);
  EXPECT_EQ(o.run.recall_k, (std::vector<int64_t>{1, 2, 4, 8, 16}));
  EXPECT_DOUBLE_EQ(o.objective.sampler_cutoff, 0.5);
  EXPECT_DOUBLE_EQ(o.objective.nonzero_loss_cutoff, 1.4);
  EXPECT_DOUBLE_EQ(o.optim.adam_epsilon, 1e-7);
  EXPECT_DOUBLE_EQ(o.optim.momentum, 0.9);
  EXPECT_EQ(o.data.crop_size, 224);
}

TEST(ParseOptions, FlagsAndListsAreParsed) {
  const TrainOptions o = parse({"--batch-size=40", "--batch-k", "4", "--steps", "3,7", "--use-pretrained",
                                "--recall-k", "1,10,100", "--gpus", "0,1", "--freeze-bn", "--lr-beta", "0"});
  EXPECT_EQ(o.run.batch_size, 40);
  EXPECT_EQ(o.objective.batch_k, 4);
  EXPECT_EQ(o.optim.steps, (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(o.run.recall_k, (std::vector<int64_t>{1, 10, 100}));
  EXPECT_TRUE(o.model.use_pretrained);
  EXPECT_TRUE(o.model.freeze_bn);
  EXPECT_EQ(o.run.gpus, "0,1");
  EXPECT_DOUBLE_EQ(o.optim.lr_beta, 0.0);
}

TEST(ParseOptions, ConfigFileIsReadAndCommandLineWins) {
  test::TempDir dir;
  const std::string path = dir.file("run.ini");
  std::ofstream(path) << "# a comment\nlr = 0.003\nmodel = small_convnet\nbatch-size = 20\nsteps = 2,4\n";
  const TrainOptions o = parse({"--config", path, "--batch-size", "30"});
  EXPECT_DOUBLE_EQ(o.optim.lr, 0.003);
  EXPECT_EQ(o.model.model, "small_convnet");
  EXPECT_EQ(o.run.batch_size, 30);
  EXPECT_EQ(o.optim.steps, (std::vector<int64_t>{2, 4}));
}

TEST(ParseOptions, BadValuesNameTheFlagAndTheFix) {
  EXPECT_NE(parse_error({"--batch-size", "72"}).find("--batch-size 72 is not a multiple of --batch-k 5; use e.g. --batch-size 75"),
            std::string::npos);
  EXPECT_NE(parse_error({"--steps", "12,x"}).find("--steps"), std::string::npos);
  EXPECT_NE(parse_error({"--batch-k", "1"}).find("--batch-k must be at least 2"), std::string::npos);
  EXPECT_NE(parse_error({"--no-such-flag"}).find("no-such-flag"), std::string::npos);
  EXPECT_NE(parse_error({"--backend", "gloo"}).find("--backend 'gloo' is unknown"), std::string::npos);
  EXPECT_NE(parse_error({"--config", "/nonexistent/x.ini"}).find("--config /nonexistent/x.ini: cannot open"),
            std::string::npos);
  EXPECT_NE(parse_error({"--batch-size", "5"}).find("at least 2 classes per replica"), std::string::npos);
}

TEST(ParseOptions, HelpReturnsFalse) {
  const char* argv[] = {"dist_train", "--help"};
  TrainOptions o;
  testing::internal::CaptureStdout();
  EXPECT_FALSE(parse_options(2, argv, o));
  const std::string help = testing::internal::GetCapturedStdout();
  EXPECT_NE(help.find("--lr-beta"), std::string::npos);
  EXPECT_NE(help.find("--iterations-per-epoch"), std::string::npos);
}

}  // namespace
}  // namespace dml
