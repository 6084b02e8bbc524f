// dist_eval end to end: it reproduces the metrics dist_train logged for the same checkpoint, on 1 rank
// and on 2 ranks x 2 replicas with a test split that does not divide by the replica count; evaluation
// inside dist_train gives the same metrics on any layout, also with fewer test images than replicas;
// the export reads back in h5py; bad inputs fail with the file and the fix and overwrite nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "dml/train/evaluator.h"
#include "synthetic_shards.h"
#include "train_fixture.h"

namespace dml::test {
namespace {

std::map<std::string, double> json_numbers(const std::string& text) {
  std::map<std::string, double> fields;
  const std::regex field("\"([^\"]+)\":\\s*(-?[0-9.eE+-]+)");
  for (std::sregex_iterator it(text.begin(), text.end(), field), end; it != end; ++it) {
    fields[(*it)[1]] = std::stod((*it)[2]);
  }
  return fields;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

CommandResult run_dist_eval(const std::vector<std::string>& args, int ranks) {
  std::string command = ranks > 0 ? mpirun_command(ranks) + " " : "";
  command += shell_quote(built_executable("dist_eval"));
  for (const auto& a : args) command += " " + shell_quote(a);
  return run_command("timeout 240 env " + command);
}

const char* const kMetricKeys[] = {"recall@1", "recall@2", "recall@4", "precision@1", "r_precision", "map@r", "nmi"};

void expect_same_metrics(const std::map<std::string, double>& a, const std::map<std::string, double>& b,
                         const std::string& what) {
  for (const char* key : kMetricKeys) {
    ASSERT_TRUE(a.count(key) && b.count(key)) << what << ": " << key;
    EXPECT_DOUBLE_EQ(a.at(key), b.at(key)) << what << ": " << key;
  }
}

class DistEval : public ::testing::Test {
 protected:
  // 6 train classes; 5 test classes x 7 images = 35 test images: odd, not divisible by 2 or 4.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), 6, 5, 7, 16);
    const CommandResult r = run_dist_train(train_args(dir_->file("m"), {"--metrics-file", dir_->file("m.jsonl")}), 0);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::vector<std::string> train_args(const std::string& prefix, std::vector<std::string> extra) {
    std::vector<std::string> args = {"--data-path", dir_->file("data"), "--model", "small_convnet", "--crop-size", "14",
                                     "--embed-dim", "8", "--batch-size", "8", "--batch-k", "4", "--threads", "1",
                                     "--workers", "1", "--iterations-per-epoch", "6", "--epochs", "2", "--lr", "1e-2",
                                     "--recall-k", "1,2,4", "--nmi", "--no-progress", "--save-model-prefix", prefix};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  // The evaluation records of the run, in order.
  static std::vector<std::map<std::string, double>> logged() { return read_metrics(dir_->file("m.jsonl")).evals; }
  static TempDir* dir_;
};
TempDir* DistEval::dir_ = nullptr;

TEST_F(DistEval, ReproducesTheLoggedMetricsOnOneAndTwoRanks) {
  const auto evals = logged();
  ASSERT_EQ(evals.size(), 2u);
  // -best.pt is the epoch with the best Recall@1 (the first on a tie); -last.pt the last epoch.
  const auto& best = evals[0].at("recall@1") >= evals[1].at("recall@1") ? evals[0] : evals[1];
  const std::vector<std::string> common = {"--recall-k", "1,2,4", "--nmi", "--threads", "1", "--workers", "1"};
  struct Case {
    std::string checkpoint;
    const std::map<std::string, double>* expected;
    int ranks;
    std::vector<std::string> layout;
  };
  for (const Case& c : {Case{"m-best.pt", &best, 0, {}}, Case{"m-last.pt", &evals[1], 0, {}},
                        Case{"m-best.pt", &best, 2, {}}, Case{"m-last.pt", &evals[1], 2, {"--gpus", "cpu", "--cpu-replicas", "2"}}}) {
    const std::string json = dir_->file("eval-" + std::to_string(c.ranks) + "-" + c.checkpoint + ".json");
    std::vector<std::string> args = {"--checkpoint", dir_->file(c.checkpoint), "--metrics-json", json};
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), c.layout.begin(), c.layout.end());
    const CommandResult r = run_dist_eval(args, c.ranks);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Recall@1"), std::string::npos) << r.output;  // the table
    const auto got = json_numbers(read_file(json));
    EXPECT_EQ(got.at("images"), 35);
    expect_same_metrics(got, *c.expected, c.checkpoint + " on " + std::to_string(c.ranks) + " ranks");
  }
}

// Evaluation inside dist_train: the untrained model (the same on every layout, from the seed) scores
// the same on 1 rank x 1 replica and on 2 ranks x 2 replicas with 3 test images, fewer than the 4
// replicas and not divisible by them, so some replicas embed nothing and the gather is padded.
TEST_F(DistEval, TrainingEvaluationDoesNotDependOnTheLayout) {
  const std::vector<std::string> small = {"--max-test-images", "3", "--recall-k", "1,2", "--eval-untrained",
                                          "--max-steps", "1"};
  std::vector<std::string> one = train_args(dir_->file("one"), {"--metrics-file", dir_->file("one.jsonl")});
  one.insert(one.end(), small.begin(), small.end());
  const CommandResult r1 = run_dist_train(one, 0);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  std::vector<std::string> four = train_args(dir_->file("four"), {"--metrics-file", dir_->file("four.jsonl")});
  four.insert(four.end(), small.begin(), small.end());
  four.insert(four.end(), {"--batch-size", "4", "--batch-k", "2", "--gpus", "cpu", "--cpu-replicas", "2"});
  const CommandResult r4 = run_dist_train(four, 2);
  ASSERT_EQ(r4.exit_code, 0) << r4.output;
  EXPECT_NE(r4.output.find("test 3 images"), std::string::npos) << r4.output;
  const auto a = read_metrics(dir_->file("one.jsonl")).evals, b = read_metrics(dir_->file("four.jsonl")).evals;
  ASSERT_GE(a.size(), 1u);
  ASSERT_GE(b.size(), 1u);
  for (const char* key : {"recall@1", "recall@2", "precision@1", "r_precision", "map@r"}) {
    EXPECT_DOUBLE_EQ(a[0].at(key), b[0].at(key)) << key;
  }
}

TEST_F(DistEval, ExportReadsBackInH5py) {
  const std::string out = dir_->file("export.h5"), json = dir_->file("export.json");
  const CommandResult r = run_dist_eval({"--checkpoint", dir_->file("m-best.pt"), "--export", out, "--metrics-json", json,
                                         "--recall-k", "1", "--threads", "1", "--max-images", "30"},
                                        2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto metrics = json_numbers(read_file(json));
  const CommandResult check = run_python_file(
      "tests/train/python/check_export.py",
      {out, dir_->file("data"), "test", "30", "8", std::to_string(metrics.at("recall@1"))});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("ok"), std::string::npos) << check.output;
}

// Query/gallery protocol: nothing is excluded, so a split queried against itself finds every query
// at distance 0 (Recall@1 = 1), while the same-set protocol, which excludes the query, does not.
TEST_F(DistEval, QueryAgainstGalleryDoesNotExcludeTheQuery) {
  const std::string json = dir_->file("query.json");
  const CommandResult r = run_dist_eval({"--checkpoint", dir_->file("m-best.pt"), "--query-split", "test", "--split",
                                         "test", "--recall-k", "1,2", "--metrics-json", json, "--threads", "1"},
                                        2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto got = json_numbers(read_file(json));
  EXPECT_EQ(got.at("images"), 70);  // 35 queries + 35 gallery images
  EXPECT_DOUBLE_EQ(got.at("recall@1"), 1.0);
  EXPECT_DOUBLE_EQ(got.at("precision@1"), 1.0);
  EXPECT_LT(logged().back().at("recall@1"), 1.0);  // the same-set figure of that model
}

// The model in Python: launch/export_torchscript.py's module, fed the same images, gives dist_eval's
// exported embeddings within 1e-5.
TEST_F(DistEval, TorchScriptInPythonEqualsDistEval) {
  const std::string out = dir_->file("ts-export.h5"), model = dir_->file("model.ts");
  const CommandResult r = run_dist_eval({"--checkpoint", dir_->file("m-best.pt"), "--export", out, "--recall-k", "1",
                                         "--threads", "1"},
                                        0);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const CommandResult exported =
      run_python_file("launch/export_torchscript.py", {"--checkpoint", dir_->file("m-best.pt"), "--out", model});
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const CommandResult check =
      run_python_file("tests/train/python/check_torchscript_export.py", {model, out, dir_->file("data"), "test"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("ok"), std::string::npos) << check.output;
}

TEST_F(DistEval, BadInputNamesTheFileAndTheFixAndOverwritesNothing) {
  const std::string best = dir_->file("m-best.pt");
  CommandResult r = run_dist_eval({"--checkpoint", best, "--model", "resnet18_v1"}, 0);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--model resnet18_v1 does not match " + best + ", which holds a small_convnet"),
            std::string::npos) << r.output;
  r = run_dist_eval({"--checkpoint", best, "--embed-dim", "16"}, 0);
  EXPECT_NE(r.output.find("whose embeddings have 8 dimensions; pass --embed-dim 8"), std::string::npos) << r.output;
  const std::string not_a_model = dir_->file("m.jsonl");
  r = run_dist_eval({"--checkpoint", not_a_model}, 0);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(not_a_model + ": cannot read the checkpoint"), std::string::npos) << r.output;
  const std::string future = dir_->file("future.pt");
  {
    torch::serialize::OutputArchive archive;
    archive.write("format_version", torch::tensor(int64_t{2}));
    archive.save_to(future);
  }
  r = run_dist_eval({"--checkpoint", future}, 0);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(future + ": format_version is 2, this build reads 1"), std::string::npos) << r.output;
  r = run_dist_eval({"--checkpoint", dir_->file("missing.pt")}, 0);
  EXPECT_NE(r.output.find("missing.pt: no such checkpoint"), std::string::npos) << r.output;
  r = run_dist_eval({"--checkpoint", best, "--recall-k", "1,64"}, 0);  // 35 test images
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--recall-k: Recall@64 needs at least 64 other images per query, but the evaluated split has 35"),
            std::string::npos) << r.output;

  // An existing export is kept, byte for byte, unless --overwrite.
  const std::string existing = dir_->file("keep.h5");
  std::ofstream(existing) << "precious";
  r = run_dist_eval({"--checkpoint", best, "--export", existing}, 0);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("export " + existing + " exists; choose another path or pass --overwrite"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_file(existing), "precious");

  // A split with one class has no retrieval metrics.
  TempDir one;
  SyntheticSpec spec;
  spec.num_classes = 1;
  spec.per_class = 7;
  spec.height = spec.width = 16;
  make_synthetic_split(spec).write(one.file("data"), "test", /*shards=*/1);
  r = run_dist_eval({"--checkpoint", best, "--data-path", one.file("data"), "--recall-k", "1"}, 0);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("holds 1 class among its 7 evaluated images"), std::string::npos) << r.output;
}

// --max-test-images / --max-images take an evenly spaced subset (as the help says), not the first N.
TEST(EvaluatedRows, EvenlySpacedSubset) {
  EXPECT_EQ(evaluated_rows(10, 0), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(evaluated_rows(10, 4), (std::vector<int64_t>{0, 2, 5, 7}));
  EXPECT_EQ(evaluated_rows(10, 20).size(), 10u);
  EXPECT_EQ(evaluated_rows(7, 3), (std::vector<int64_t>{0, 2, 4}));
  const CommandResult help = run_command(shell_quote(built_executable("dist_train")) + " --help");
  EXPECT_NE(help.output.find("evaluate on an evenly spaced subset of"), std::string::npos) << help.output;
}

}  // namespace
}  // namespace dml::test
