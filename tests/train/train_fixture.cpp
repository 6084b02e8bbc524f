#include "train_fixture.h"

#include <fstream>
#include <regex>

#include "dml/model/embedding_net.h"
#include "dml/train/checkpoint.h"

namespace dml::test {

std::string dist_train_command(const std::vector<std::string>& args, int ranks) {
  // Under mpirun, -x sets DML_NO_PROGRESS for (and exports it to) every rank.
  std::string command = ranks > 0 ? mpirun_command(ranks) + " -x DML_NO_PROGRESS=1 " : "DML_NO_PROGRESS=1 ";
  command += shell_quote(built_executable("dist_train"));
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

ModelState checkpoint_state(const std::string& path, const std::string& model, int64_t embed_dim,
                            bool small_input_stem) {
  ModelOptions options;
  options.name = model;
  options.embed_dim = embed_dim;
  options.small_input_stem = small_input_stem;
  EmbeddingNet net = make_embedding_net(options, /*seed=*/999);
  load_inference_model(path, net);
  ModelState state;
  for (const auto& p : net->named_parameters()) state.parameters[p.key()] = p.value().detach().clone();
  for (const auto& b : net->named_buffers()) state.buffers[b.key()] = b.value().detach().clone();
  return state;
}

std::map<std::string, torch::Tensor> checkpoint_parameters(const std::string& path, const std::string& model,
                                                           int64_t embed_dim, bool small_input_stem) {
  return checkpoint_state(path, model, embed_dim, small_input_stem).parameters;
}

}  // namespace dml::test
