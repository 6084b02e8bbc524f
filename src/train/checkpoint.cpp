#include "dml/train/checkpoint.h"

#include <filesystem>
#include <sstream>

#include "dml/util/atomic_file.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {
namespace {

void write_meta(torch::serialize::OutputArchive& archive, const RunSignature& s) {
  archive.write("format_version", torch::tensor(kCheckpointFormatVersion));
  archive.write("meta/model", c10::IValue(s.model));
  archive.write("meta/embed_dim", torch::tensor(s.embed_dim));
  archive.write("meta/batch_size", torch::tensor(s.batch_size));
  archive.write("meta/batch_k", torch::tensor(s.batch_k));
  archive.write("meta/total_replicas", torch::tensor(s.total_replicas));
  archive.write("meta/seed", torch::tensor(s.seed));
  archive.write("meta/optimizer", c10::IValue(s.optimizer));
  archive.write("meta/iterations_per_epoch", torch::tensor(s.iterations_per_epoch));
  archive.write("meta/options", c10::IValue(s.options_text));
}

int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key, const std::string& path) {
  torch::Tensor t;
  if (!archive.try_read(key, t)) throw Error(str(path, ": field '", key, "' is missing; the file is not a dml checkpoint"));
  return t.item<int64_t>();
}

std::string read_string(torch::serialize::InputArchive& archive, const std::string& key, const std::string& path) {
  c10::IValue value;
  if (!archive.try_read(key, value)) throw Error(str(path, ": field '", key, "' is missing; the file is not a dml checkpoint"));
  return value.toStringRef();
}

// Tensors are mapped onto `device` so that loading never moves a module to another device.
torch::serialize::InputArchive open_archive(const std::string& path, const torch::Device& device) {
  check(std::filesystem::exists(path), path, ": no such checkpoint; pass the <prefix>-last.pt written by an earlier run");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
  } catch (const c10::Error& e) {
    throw Error(str(path, ": cannot read the checkpoint (", e.what_without_backtrace(), "); the file is damaged or not a dml checkpoint"));
  }
  const int64_t version = read_int(archive, "format_version", path);
  check(version == kCheckpointFormatVersion, path, ": format_version is ", version, ", this build reads ",
        kCheckpointFormatVersion, "; resume with the dml version that wrote it or start a new run");
  return archive;
}

// `field` is the run option's name (OptionError field, mapped to its flag by the command line),
// `what` says it in words.
void expect_equal(const std::string& path, const char* field, const char* what, const std::string& found,
                  const std::string& expected) {
  check_option(found == expected, field, path, ": ", what, " is ", found, " in the checkpoint but ", expected,
               " in this run; resume with the same ", what, " (or start a new run without resuming)");
}

torch::Device device_of(torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return torch::kCPU;
}

// Loads a module's tensors by name; LibTorch would silently accept other shapes, so they are checked.
void load_module(torch::serialize::InputArchive& archive, const std::string& key, torch::nn::Module& module,
                 const std::string& path) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  for (const auto& p : module.named_parameters()) shapes.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : module.named_buffers()) shapes.emplace_back(b.key(), b.value().sizes().vec());
  torch::serialize::InputArchive nested;
  try {
    archive.read(key, nested);
    module.load(nested);
  } catch (const c10::Error& e) {
    throw Error(str(path, ": '", key, "' does not match this run's model (", e.what_without_backtrace(),
                    "); resume with the same model, embedding size, input stem and data"));
  }
  auto check_shape = [&](const std::string& name, const torch::Tensor& t) {
    for (const auto& [n, shape] : shapes) {
      if (n == name && shape != t.sizes().vec()) {
        throw Error(str(path, ": '", key, "/", name, "' has shape ", t.sizes(), " in the checkpoint but ",
                        c10::IntArrayRef(shape), " in this run; resume with the same model options and data"));
      }
    }
  };
  for (const auto& p : module.named_parameters()) check_shape(p.key(), p.value());
  for (const auto& b : module.named_buffers()) check_shape(b.key(), b.value());
}

void write_best_metrics(torch::serialize::OutputArchive& archive, const TrainingState& state) {
  const RetrievalMetrics& m = state.best_metrics;
  archive.write("state/best_epoch", torch::tensor(state.best_epoch));
  archive.write("state/best/ks", torch::tensor(m.ks, torch::kInt64).reshape({-1}));
  archive.write("state/best/recall_at_k", torch::tensor(m.recall_at_k, torch::kFloat64).reshape({-1}));
  archive.write("state/best/scalars", torch::tensor({m.precision_at_1, m.r_precision, m.map_at_r, m.nmi,
                                                      static_cast<double>(m.num_queries)}, torch::kFloat64));
}

// Checkpoints written before the best metrics were stored load with best_epoch -1.
void read_best_metrics(torch::serialize::InputArchive& archive, TrainingState& state) {
  torch::Tensor epoch, ks, recall, scalars;
  if (!archive.try_read("state/best_epoch", epoch) || !archive.try_read("state/best/ks", ks) ||
      !archive.try_read("state/best/recall_at_k", recall) || !archive.try_read("state/best/scalars", scalars)) {
    return;
  }
  state.best_epoch = epoch.item<int64_t>();
  RetrievalMetrics& m = state.best_metrics;
  ks = ks.cpu().contiguous();
  recall = recall.cpu().to(torch::kFloat64).contiguous();
  scalars = scalars.cpu().to(torch::kFloat64).contiguous();
  m.ks.assign(ks.data_ptr<int64_t>(), ks.data_ptr<int64_t>() + ks.numel());
  m.recall_at_k.assign(recall.data_ptr<double>(), recall.data_ptr<double>() + recall.numel());
  const double* v = scalars.data_ptr<double>();
  m.precision_at_1 = v[0];
  m.r_precision = v[1];
  m.map_at_r = v[2];
  m.nmi = v[3];
  m.num_queries = static_cast<int64_t>(v[4]);
}

std::map<std::string, std::string> parse_options_text(const std::string& text) {
  std::map<std::string, std::string> options;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t eq = line.find(" = ");
    if (eq != std::string::npos) options[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return options;
}

struct Difference {
  std::string what, checkpoint, run;
};

// Every run-changing difference between the checkpoint and this run, in one list.
std::vector<Difference> run_differences(torch::serialize::InputArchive& archive, const std::string& path,
                                        const RunSignature& expected) {
  std::vector<Difference> out;
  auto compare = [&](const std::string& what, const std::string& found, const std::string& wanted) {
    if (found != wanted) out.push_back({what, found, wanted});
  };
  if (!expected.compared_options.empty()) {
    const auto stored = parse_options_text(read_string(archive, "meta/options", path));
    const auto current = parse_options_text(expected.options_text);
    for (const auto& key : expected.compared_options) {
      const auto s = stored.find(key), c = current.find(key);
      compare(key, s == stored.end() ? "(not recorded)" : s->second, c == current.end() ? "(not set)" : c->second);
    }
    return out;
  }
  compare("model", read_string(archive, "meta/model", path), expected.model);
  compare("embedding size", std::to_string(read_int(archive, "meta/embed_dim", path)), std::to_string(expected.embed_dim));
  compare("batch size", std::to_string(read_int(archive, "meta/batch_size", path)), std::to_string(expected.batch_size));
  compare("batch_k", std::to_string(read_int(archive, "meta/batch_k", path)), std::to_string(expected.batch_k));
  compare("seed", std::to_string(read_int(archive, "meta/seed", path)), std::to_string(expected.seed));
  compare("optimizer", read_string(archive, "meta/optimizer", path), expected.optimizer);
  compare("iterations per epoch", std::to_string(read_int(archive, "meta/iterations_per_epoch", path)),
          std::to_string(expected.iterations_per_epoch));
  return out;
}

}  // namespace

namespace {
// Writes through checked POSIX calls (a full disk or an I/O error is a dml::Error naming the file,
// the reason and the fix, and leaves the previous file as it was), never LibTorch's own file
// writer, whose errors carry C++ stack traces and whose buffered last bytes fail unchecked.
void save_archive(torch::serialize::OutputArchive& archive, const std::string& path) {
  write_file_atomically(path, [&](const std::string& tmp) {
    CheckedFileWriter file(tmp, path);
    try {
      archive.save_to([&](const void* data, size_t n) { return file.write(data, n); });
    } catch (const c10::Error& e) {
      throw Error(str(path, ": cannot serialise the checkpoint (", e.what_without_backtrace(), ")"));
    }
    file.finish();
  });
}
}  // namespace

namespace {
// A checkpoint never holds NaN or inf weights: such a file would replace the last good state with
// one that cannot train or embed. The trainer stops at the first non-finite step before it gets
// here; this is the last guard, for every writer.
void check_finite_before_writing(const std::string& path, torch::nn::Module& module, const char* what) {
  torch::NoGradGuard no_grad;
  for (const auto& item : module.named_parameters()) {
    check(torch::isfinite(item.value()).all().item<bool>(), path, ": not written: ", what, " parameter ", item.key(),
          " is not finite (NaN or inf), so the previous file is kept; lower the learning rate, or pass "
          "--skip-nonfinite to skip non-finite steps");
  }
  for (const auto& item : module.named_buffers()) {
    if (!item.value().is_floating_point()) continue;
    check(torch::isfinite(item.value()).all().item<bool>(), path, ": not written: ", what, " buffer ", item.key(),
          " (BatchNorm statistics) is not finite (NaN or inf), so the previous file is kept; lower the learning rate");
  }
}
}  // namespace

void save_checkpoint(const std::string& path, EmbeddingNet& net, MarginLoss& loss, const Optimizer& net_optimizer,
                     const Optimizer* beta_optimizer, const TrainingState& state, const RunSignature& signature) {
  check_finite_before_writing(path, *net, "model");
  check_finite_before_writing(path, *loss, "loss");
  torch::serialize::OutputArchive archive;
  write_meta(archive, signature);
  torch::serialize::OutputArchive model_archive, loss_archive;
  net->save(model_archive);
  loss->save(loss_archive);
  archive.write("model", model_archive);
  archive.write("loss", loss_archive);
  net_optimizer.save(archive, "optim/network/");
  if (beta_optimizer != nullptr) beta_optimizer->save(archive, "optim/beta/");
  archive.write("state/epoch", torch::tensor(state.epoch));
  archive.write("state/step", torch::tensor(state.step));
  archive.write("state/best_recall_at_1", torch::tensor(state.best_recall_at_1, torch::kFloat64));
  write_best_metrics(archive, state);
  save_archive(archive, path);
}

TrainingState load_checkpoint(const std::string& path, EmbeddingNet& net, MarginLoss& loss, Optimizer& net_optimizer,
                              Optimizer* beta_optimizer, const RunSignature& expected) {
  auto archive = open_archive(path, device_of(*net));
  expect_equal(path, "replicas", "number of replicas (ranks x devices)", std::to_string(read_int(archive, "meta/total_replicas", path)),
               std::to_string(expected.total_replicas));
  // Beta: learned (a parameter in the loss archive, moments under optim/beta/) or fixed; a resume
  // must not silently drop or invent the learned values.
  {
    torch::serialize::InputArchive loss_archive;
    torch::Tensor beta;
    const bool learned_in_checkpoint = archive.try_read("loss", loss_archive) && loss_archive.try_read("beta", beta);
    const bool learned_now = beta_optimizer != nullptr;
    check(learned_in_checkpoint == learned_now, path, ": the checkpoint ",
          learned_in_checkpoint ? "learned beta (per-class values and their optimiser state)" : "kept beta fixed",
          " but this run ", learned_now ? "learns it" : "keeps it fixed", "; resume with ",
          learned_in_checkpoint ? "a positive beta learning rate (the checkpoint's lr-beta)"
                                : "beta fixed (lr-beta <= 0, as the checkpoint)",
          ", or start a new run without resuming");
  }
  const std::vector<Difference> differences = run_differences(archive, path, expected);
  if (!differences.empty()) {
    std::string list;
    for (const auto& d : differences) {
      list += str("\n  ", d.what, ": ", d.checkpoint, " in the checkpoint, ", d.run, " in this run");
    }
    if (!expected.allow_option_changes) {
      throw Error(str(path, ": this run differs from the checkpoint in ", differences.size(), " option(s) that change the run:",
                      list, "\nresume with the checkpoint's values, or start a new run without resuming",
                      expected.override_hint.empty() ? "" : "; ", expected.override_hint));
    }
    log::warn("ckpt", str(path, ": continuing with ", differences.size(),
                          " option(s) that differ from the checkpoint (override):", list));
  }
  load_module(archive, "model", *net, path);
  load_module(archive, "loss", *loss, path);
  net_optimizer.load(archive, "optim/network/");
  if (beta_optimizer != nullptr) beta_optimizer->load(archive, "optim/beta/");
  TrainingState state;
  state.epoch = read_int(archive, "state/epoch", path);
  state.step = read_int(archive, "state/step", path);
  torch::Tensor best;
  archive.read("state/best_recall_at_1", best);
  state.best_recall_at_1 = best.item<double>();
  read_best_metrics(archive, state);
  return state;
}

void save_inference_model(const std::string& path, EmbeddingNet& net, const RunSignature& signature) {
  check_finite_before_writing(path, *net, "model");
  torch::serialize::OutputArchive archive;
  write_meta(archive, signature);
  torch::serialize::OutputArchive model_archive;
  net->save(model_archive);
  archive.write("model", model_archive);
  save_archive(archive, path);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  auto archive = open_archive(path, torch::kCPU);
  CheckpointInfo info;
  info.model = read_string(archive, "meta/model", path);
  info.embed_dim = read_int(archive, "meta/embed_dim", path);
  info.options = parse_options_text(read_string(archive, "meta/options", path));
  return info;
}

void load_inference_model(const std::string& path, EmbeddingNet& net) {
  auto archive = open_archive(path, device_of(*net));
  load_module(archive, "model", *net, path);
}

}  // namespace dml
