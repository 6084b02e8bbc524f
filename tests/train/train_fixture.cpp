#include "train_fixture.h"

#include <fstream>
#include <random>
#include <regex>

#include "dml/data/shard_writer.h"
#include "dml/model/embedding_net.h"
#include "dml/train/checkpoint.h"

namespace dml::test {

void write_synthetic_shards(const std::string& dir, int64_t num_train_classes, int64_t num_test_classes,
                            int64_t per_class, int64_t side) {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.f, 25.f);
  std::uniform_int_distribution<int> base(40, 215);
  auto write = [&](const std::string& split, int64_t classes) {
    std::vector<uint8_t> images;
    std::vector<int64_t> labels, ids;
    for (int64_t c = 0; c < classes; ++c) {
      std::vector<int> pattern(side * side);
      for (auto& p : pattern) p = base(rng);
      for (int64_t i = 0; i < per_class; ++i) {
        for (int64_t p = 0; p < side * side; ++p) {
          images.push_back(static_cast<uint8_t>(std::clamp(pattern[p] + noise(rng), 0.f, 255.f)));
        }
        labels.push_back(c);
        ids.push_back(static_cast<int64_t>(ids.size()));
      }
    }
    ShardSetInfo info;
    info.dataset = "synthetic";
    info.num_classes = classes;
    info.height = info.width = side;
    info.channels = 1;
    write_split(dir, split, info, images.data(), labels, ids, /*shards=*/2, /*overwrite=*/true);
  };
  write("train", num_train_classes);
  write("test", num_test_classes);
}

std::string dist_train_command(const std::vector<std::string>& args, int ranks) {
  std::string command;
  if (ranks > 0) {
    command = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np " + std::to_string(ranks) +
              " --oversubscribe --bind-to none ";
  }
  command += "DML_NO_PROGRESS=1 " + shell_quote(built_executable("dist_train"));
  if (ranks > 0) command = command.replace(command.find("DML_NO_PROGRESS=1 "), 18, "-x DML_NO_PROGRESS=1 ");
  for (const auto& a : args) command += " " + shell_quote(a);
  return command;
}

CommandResult run_dist_train(const std::vector<std::string>& args, int ranks, int timeout_s) {
  return run_command("timeout " + std::to_string(timeout_s) + " env " + dist_train_command(args, ranks));
}

MetricsLog read_metrics(const std::string& path) {
  MetricsLog log;
  std::ifstream in(path);
  std::string line;
  const std::regex field("\"([^\"]+)\":\\s*(-?[0-9.eE+-]+)");
  while (std::getline(in, line)) {
    std::map<std::string, double> fields;
    for (std::sregex_iterator it(line.begin(), line.end(), field), end; it != end; ++it) {
      fields[(*it)[1]] = std::stod((*it)[2]);
    }
    if (line.find("\"model\"") != std::string::npos) {
      log.evals.push_back(fields);
    } else if (fields.count("loss")) {
      log.loss_by_step[static_cast<int64_t>(fields["step"])] = fields["loss"];
    }
  }
  return log;
}

std::map<std::string, torch::Tensor> fresh_parameters(const std::string& model, int64_t embed_dim, uint64_t seed) {
  ModelOptions options;
  options.name = model;
  options.embed_dim = embed_dim;
  EmbeddingNet net = make_embedding_net(options, seed);
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : net->named_parameters()) params[p.key()] = p.value().detach().clone();
  return params;
}

std::map<std::string, torch::Tensor> checkpoint_parameters(const std::string& path, const std::string& model,
                                                           int64_t embed_dim, bool small_input_stem) {
  ModelOptions options;
  options.name = model;
  options.embed_dim = embed_dim;
  options.small_input_stem = small_input_stem;
  EmbeddingNet net = make_embedding_net(options, /*seed=*/999);
  load_inference_model(path, net);
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : net->named_parameters()) params[p.key()] = p.value().detach().clone();
  return params;
}

}  // namespace dml::test
