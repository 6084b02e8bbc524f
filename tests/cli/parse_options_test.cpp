#include <gtest/gtest.h>

#include <fstream>

#include "dml/cli/options.h"
#include "parse_helpers.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml {
namespace {

TrainOptions parse(std::vector<std::string> args) { return test::parse_flags(std::move(args)); }

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
  EXPECT_EQ(o.config.data.data_path, "data/CUB_200_2011");
  EXPECT_EQ(o.config.model.embed_dim, 128);
  EXPECT_EQ(o.config.batches.batch_size, 70);
  EXPECT_EQ(o.batch_k, 5);
  EXPECT_EQ(o.config.run.epochs, 20);
  EXPECT_EQ(o.optimizer, "adam");
  EXPECT_DOUBLE_EQ(o.config.network_optimizer.lr, 1e-4);
  EXPECT_DOUBLE_EQ(o.lr_beta, 0.1);
  EXPECT_DOUBLE_EQ(o.config.loss.margin, 0.2);
  EXPECT_DOUBLE_EQ(o.config.loss.beta_init, 1.2);
  EXPECT_DOUBLE_EQ(o.config.loss.nu, 0.0);
  EXPECT_DOUBLE_EQ(o.config.schedule.factor, 0.5);
  EXPECT_EQ(o.config.schedule.step_epochs, (std::vector<int64_t>{12, 14, 16, 18}));
  EXPECT_DOUBLE_EQ(o.config.network_optimizer.weight_decay, 1e-4);
  EXPECT_EQ(o.config.batches.seed, 123u);
  EXPECT_EQ(o.config.model.name, "resnet50_v2");
  EXPECT_EQ(o.config.run.save_model_prefix, "margin_loss_model");
  EXPECT_FALSE(o.config.model.use_pretrained);
  EXPECT_EQ(o.kvstore, "device");
  EXPECT_EQ(o.config.run.log_interval, 20);
  EXPECT_EQ(o.config.run.iterations_per_epoch, 200);
  EXPECT_EQ(o.config.eval.ks, (std::vector<int64_t>{1, 2, 4, 8, 16}));
  EXPECT_DOUBLE_EQ(o.config.sampling.cutoff, 0.5);
  EXPECT_DOUBLE_EQ(o.config.sampling.nonzero_loss_cutoff, 1.4);
  EXPECT_DOUBLE_EQ(o.config.network_optimizer.epsilon, 1e-7);
  EXPECT_DOUBLE_EQ(o.config.network_optimizer.momentum, 0.9);
  EXPECT_EQ(o.crop_size, 224);
}

TEST(ParseOptions, FlagsAndListsAreParsed) {
  const TrainOptions o = parse({"--batch-size=40", "--batch-k", "4", "--steps", "3,7", "--use-pretrained",
                                "--recall-k", "1,10,100", "--gpus", "0,1", "--freeze-bn", "--lr-beta", "0"});
  EXPECT_EQ(o.config.batches.batch_size, 40);
  EXPECT_EQ(o.batch_k, 4);
  EXPECT_EQ(o.config.schedule.step_epochs, (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(o.config.eval.ks, (std::vector<int64_t>{1, 10, 100}));
  EXPECT_TRUE(o.config.model.use_pretrained);
  EXPECT_TRUE(o.config.freeze_bn);
  EXPECT_EQ(o.gpus, "0,1");
  EXPECT_DOUBLE_EQ(o.lr_beta, 0.0);
}

TEST(ParseOptions, ConfigFileIsReadAndCommandLineWins) {
  test::TempDir dir;
  const std::string path = dir.file("run.ini");
  std::ofstream(path) << "# a comment\nlr = 0.003\nmodel = small_convnet\nbatch-size = 20\nsteps = 2,4\n";
  const TrainOptions o = parse({"--config", path, "--batch-size", "30"});
  EXPECT_DOUBLE_EQ(o.config.network_optimizer.lr, 0.003);
  EXPECT_EQ(o.config.model.name, "small_convnet");
  EXPECT_EQ(o.config.batches.batch_size, 30);
  EXPECT_EQ(o.config.schedule.step_epochs, (std::vector<int64_t>{2, 4}));
}

TEST(ParseOptions, BadValuesNameTheFlagAndTheFix) {
  EXPECT_NE(parse_error({"--batch-size", "72"}).find("--batch-size: batch size 72 is not a multiple of batch_k 5; "),
            std::string::npos);
  EXPECT_NE(parse_error({"--batch-size", "72"}).find("use e.g. 75"), std::string::npos);
  EXPECT_NE(parse_error({"--steps", "12,x"}).find("--steps"), std::string::npos);
  EXPECT_NE(parse_error({"--batch-k", "1"}).find("--batch-k: batch_k is 1; it must be at least 2"), std::string::npos);
  EXPECT_NE(parse_error({"--no-such-flag"}).find("no-such-flag"), std::string::npos);
  EXPECT_NE(parse_error({"--backend", "gloo"}).find("--backend: communicator backend 'gloo' is unknown"), std::string::npos);
  EXPECT_NE(parse_error({"--config", "/nonexistent/x.ini"}).find("--config /nonexistent/x.ini: cannot open"),
            std::string::npos);
  EXPECT_NE(parse_error({"--batch-size", "5"}).find("at least 2 classes per replica"), std::string::npos);
  // Each component's rule comes back with the flag that set the value, also where two flags share a
  // component field name ("lr" of the network's and of beta's optimiser).
  EXPECT_NE(parse_error({"--lr-beta", "0.1", "--momentum", "1.5"}).find("--momentum: optimizer: momentum is 1.5"),
            std::string::npos);
  EXPECT_NE(parse_error({"--sampler-cutoff", "1.5"}).find("--nonzero-loss-cutoff: "), std::string::npos);
  EXPECT_NE(parse_error({"--model", "resnet7"}).find("--model: unknown model name 'resnet7'"), std::string::npos);
  EXPECT_NE(parse_error({"--recall-k", "1,0"}).find("--recall-k: K = 0"), std::string::npos);
  EXPECT_NE(parse_error({"--workers", "0"}).find("--workers: "), std::string::npos);
  EXPECT_NE(parse_error({"--optimizer", "lamb"}).find("--optimizer: unknown optimizer 'lamb'"), std::string::npos);
  EXPECT_NE(parse_error({"--gpus-per-rank", "2", "--gpus", "0,1"}).find("both choose the GPUs"), std::string::npos);
  EXPECT_NE(parse_error({"--collective-timeout", "-1"}).find("--collective-timeout is -1; use 0 (no limit) or a positive"),
            std::string::npos);
  EXPECT_EQ(parse_error({"--collective-timeout", "0", "--skip-nonfinite"}), "");
  EXPECT_NE(parse_error({"--allreduce-overlap", "yes"}).find("--allreduce-overlap: 'yes' is not a choice; use auto, on or off"),
            std::string::npos);
  EXPECT_EQ(parse_error({"--allreduce-overlap", "on", "--precision", "bf16", "--channels-last"}), "");
  EXPECT_NE(parse_error({"--precision", "fp8"}).find("--precision: precision 'fp8' is unknown"), std::string::npos);
}

// A wrapper passes "$@" after its own flags: the later value must win, for values and switches, and a
// config file still loses to the command line.
TEST(ParseOptions, RepeatedFlagTakesTheLastValue) {
  const TrainOptions o = parse({"--epochs", "3", "--lr", "0.5", "--epochs", "7", "--use-pretrained", "--model",
                                "small_convnet", "--use-pretrained", "--steps", "1,2", "--steps", "4", "--lr=0.25"});
  EXPECT_EQ(o.config.run.epochs, 7);
  EXPECT_DOUBLE_EQ(o.config.network_optimizer.lr, 0.25);
  EXPECT_TRUE(o.config.model.use_pretrained);
  EXPECT_EQ(o.config.schedule.step_epochs, (std::vector<int64_t>{4}));

  test::TempDir dir;
  const std::string path = dir.file("run.ini");
  std::ofstream(path) << "epochs = 2\nepochs = 9\nlr = 0.003\n";
  const TrainOptions f = parse({"--config", path, "--lr", "0.1", "--lr", "0.2"});
  EXPECT_EQ(f.config.run.epochs, 9);                  // last in the file
  EXPECT_DOUBLE_EQ(f.config.network_optimizer.lr, 0.2);  // last on the command line, over the file
}

// --help shows defaults as people write them, not 17 significant digits.
TEST(ParseOptions, HelpPrintsDefaultsAsWritten) {
  const char* argv[] = {"dist_train", "--help"};
  TrainOptions o;
  testing::internal::CaptureStdout();
  ASSERT_FALSE(parse_options(2, argv, o));
  const std::string help = testing::internal::GetCapturedStdout();
  for (const char* shown : {"--lr-beta arg (=0.1)", "--nonzero-loss-cutoff arg (=1.4)", "--adam-epsilon arg (=1e-07)",
                            "--lr arg (=0.0001)", "--margin arg (=0.2)", "--beta arg (=1.2)", "--steps arg (=12,14,16,18)"}) {
    EXPECT_NE(help.find(shown), std::string::npos) << shown << "\n" << help;
  }
  EXPECT_EQ(help.find("0000000"), std::string::npos) << help;
  EXPECT_EQ(help.find("9999999"), std::string::npos) << help;
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
