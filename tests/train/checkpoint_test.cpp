// Checkpoint files: full round trip into freshly built objects, and the errors for a missing file,
// another format version and an incompatible run.
#include <gtest/gtest.h>

#include "dml/train/checkpoint.h"
#include "dml/train/training_log.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml {
namespace {

struct Parts {
  EmbeddingNet net{nullptr};
  MarginLoss loss{nullptr};
  std::unique_ptr<Optimizer> net_opt, beta_opt;
};

Parts build(uint64_t seed) {
  Parts p;
  ModelOptions m;
  m.name = "small_convnet";
  m.embed_dim = 8;
  p.net = make_embedding_net(m, seed);
  MarginLossOptions l;
  l.num_classes = 4;
  p.loss = MarginLoss(l);
  OptimizerOptions o;
  p.net_opt = std::make_unique<Optimizer>(std::vector<OptimizerParamGroup>{{"all", p.net->parameters(), 1.0}}, o);
  OptimizerOptions b;
  b.kind = OptimizerKind::kSgd;
  p.beta_opt = std::make_unique<Optimizer>(std::vector<OptimizerParamGroup>{{"beta", p.loss->parameters(), 1.0}}, b);
  return p;
}

// One optimiser step on a fixed input so that moments, BN statistics and beta all change.
void train_once(Parts& p) {
  p.net->train();
  p.net_opt->zero_grad();
  p.beta_opt->zero_grad();
  auto x = torch::linspace(-1, 1, 2 * 3 * 16 * 16).reshape({2, 3, 16, 16});
  auto loss = p.net->forward(x).sum() + p.loss->beta().pow(2).sum();
  loss.backward();
  p.net_opt->step();
  p.beta_opt->step();
}

RunSignature signature() { return {"small_convnet", 8, 16, 4, 2, 123, "adam", 200, "options text", {}, false, ""}; }

TEST(Checkpoint, RoundTripRestoresEveryTensorAndTheState) {
  test::TempDir dir;
  Parts a = build(1);
  train_once(a);
  train_once(a);
  RetrievalMetrics best;
  best.ks = {1, 4};
  best.recall_at_k = {0.625, 0.875};
  best.map_at_r = 0.25;
  best.num_queries = 40;
  save_checkpoint(dir.file("c-last.pt"), a.net, a.loss, *a.net_opt, a.beta_opt.get(), {3, 41, 0.625, 2, best}, signature());
  EXPECT_EQ(test::list_files(dir.path()), std::vector<std::string>{"c-last.pt"});

  Parts b = build(2);  // different initial weights
  const TrainingState state = load_checkpoint(dir.file("c-last.pt"), b.net, b.loss, *b.net_opt, b.beta_opt.get(), signature());
  EXPECT_EQ(state.epoch, 3);
  EXPECT_EQ(state.step, 41);
  EXPECT_DOUBLE_EQ(state.best_recall_at_1, 0.625);
  EXPECT_EQ(state.best_epoch, 2);
  EXPECT_EQ(state.best_metrics.ks, best.ks);
  EXPECT_EQ(state.best_metrics.recall_at_k, best.recall_at_k);
  EXPECT_DOUBLE_EQ(state.best_metrics.map_at_r, 0.25);
  EXPECT_EQ(state.best_metrics.num_queries, 40);
  auto pa = a.net->named_parameters(), pb = b.net->named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  auto ba = a.net->named_buffers(), bb = b.net->named_buffers();
  for (const auto& item : ba) EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
  EXPECT_TRUE(torch::equal(a.loss->beta(), b.loss->beta()));
  // Continuing both gives identical weights: the optimiser moments came back too.
  train_once(a);
  train_once(b);
  for (const auto& item : a.net->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), b.net->named_parameters()[item.key()])) << item.key();
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, ErrorsNameTheFileAndTheField) {
  test::TempDir dir;
  Parts a = build(1);
  const std::string path = dir.file("c-last.pt");
  EXPECT_NE(error_of([&] { load_checkpoint(path, a.net, a.loss, *a.net_opt, a.beta_opt.get(), signature()); })
                .find(path + ": no such checkpoint"),
            std::string::npos);
  save_checkpoint(path, a.net, a.loss, *a.net_opt, a.beta_opt.get(), {}, signature());
  RunSignature other = signature();
  other.total_replicas = 4;
  EXPECT_NE(error_of([&] { load_checkpoint(path, a.net, a.loss, *a.net_opt, a.beta_opt.get(), other); })
                .find("number of replicas (ranks x devices) is 2 in the checkpoint but 4 in this run"),
            std::string::npos);
  // A model of another shape under the same names (e.g. another --embed-dim slipped past the signature).
  Parts wide = build(1);
  {
    ModelOptions m;
    m.name = "small_convnet";
    m.embed_dim = 12;
    wide.net = make_embedding_net(m, 1);
  }
  EXPECT_NE(error_of([&] { load_inference_model(path, wide.net); }).find("'model/head.weight' has shape [8,"),
            std::string::npos)
      << error_of([&] { load_inference_model(path, wide.net); });
  // A file of another format version.
  torch::serialize::OutputArchive archive;
  archive.write("format_version", torch::tensor(int64_t{7}));
  archive.save_to(dir.file("v7.pt"));
  EXPECT_NE(error_of([&] { load_checkpoint(dir.file("v7.pt"), a.net, a.loss, *a.net_opt, a.beta_opt.get(), signature()); })
                .find("format_version is 7, this build reads 1"),
            std::string::npos);
}

TEST(Checkpoint, InferenceModelLoadsIntoAFreshNet) {
  test::TempDir dir;
  Parts a = build(1);
  train_once(a);
  save_inference_model(dir.file("m-best.pt"), a.net, signature());
  Parts b = build(5);
  load_inference_model(dir.file("m-best.pt"), b.net);
  a.net->eval();
  b.net->eval();
  auto x = torch::rand({3, 3, 16, 16});
  EXPECT_TRUE(torch::equal(a.net->forward(x), b.net->forward(x)));
}

TEST(TrainingLog, DurationsAreHumanReadable) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
}

}  // namespace
}  // namespace dml
