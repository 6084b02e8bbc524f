// End to end on the real built-in data: dml_prepare converts Debian's Fashion-MNIST, two MPI ranks
// train a small network for a few hundred steps, and MAP@R on the test split must rise well above
// the untrained network's (Recall@1 alone proves little: an untrained network already reaches ~0.75).
#include <gtest/gtest.h>

#include "train_fixture.h"

namespace dml::test {
namespace {

TEST(Learning, FashionMnistMapAtRRisesWellAboveTheUntrainedModel) {
  TempDir dir;
  const CommandResult prepared = run_command(shell_quote(built_executable("dml_prepare")) +
                                             " --source fashion-mnist --input " + shell_quote(DML_FASHION_MNIST_DIR) +
                                             " --output " + shell_quote(dir.file("fmnist")) + " --threads 2");
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  const std::string prefix = dir.file("run");
  const CommandResult r = run_dist_train(
      {"--data-path", dir.file("fmnist"), "--model", "small_convnet", "--small-input-stem", "--crop-size", "28",
       "--embed-dim", "64", "--batch-size", "30", "--batch-k", "6", "--epochs", "3", "--iterations-per-epoch", "80",
       "--steps", "2", "--lr", "1e-3", "--log-interval", "40", "--threads", "1", "--workers", "1", "--eval-untrained",
       "--max-test-images", "2000", "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"},
      /*ranks=*/2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const MetricsLog log = read_metrics(prefix + ".jsonl");
  ASSERT_GE(log.evals.size(), 2u) << r.output;
  const double untrained = log.evals.front().at("map@r");
  const double trained = log.evals.back().at("map@r");
  std::printf("MAP@R untrained %.4f -> trained %.4f; Recall@1 %.4f -> %.4f\n", untrained, trained,
              log.evals.front().at("recall@1"), log.evals.back().at("recall@1"));
  EXPECT_GT(trained, 1.6 * untrained);
  EXPECT_GT(trained, untrained + 0.08);
  // The table printed at the end names both models.
  EXPECT_NE(r.output.find("untrained"), std::string::npos);
  EXPECT_NE(r.output.find("MAP@R"), std::string::npos);
}

}  // namespace
}  // namespace dml::test
