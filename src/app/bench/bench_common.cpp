#include "app/bench/bench_common.h"

#include <sys/resource.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "dml/cli/options.h"
#include "dml/cli/train_config.h"
#include "dml/dist/communicator.h"
#include "dml/dist/gradient_buckets.h"
#include "dml/model/embedding_net.h"
#include "dml/util/error.h"

namespace dml::bench {

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: kB
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}
std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}
std::string Json::str() const {
  std::string out = "{";
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? ", " : "") + quote(fields[i].first) + ": " + fields[i].second;
  return out + "}";
}
std::string array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}
std::string array(const std::vector<int64_t>& items) {
  std::vector<std::string> s;
  for (auto v : items) s.push_back(std::to_string(v));
  return array(s);
}
void write_json(const std::string& path, const Json& j) {
  if (path.empty()) return;
  std::ofstream out(path);
  dml::check(static_cast<bool>(out), "--bench-json: cannot write ", path);
  out << j.str() << "\n";
}

// ---- the configuration, as dist_train describes it -------------------------------------------------
Json describe_config(const dml::TrainOptions& options, const dml::TrainConfig& c, int ranks, int threads) {
  Json j;
  j.add("model", c.model.name)
      .add("small_input_stem", c.model.small_input_stem)
      .add("crop_size", options.crop_size)
      .add("batch_size", c.batches.batch_size)
      .add("batch_k", options.batch_k)
      .add("embed_dim", c.model.embed_dim)
      .add("precision", options.precision)
      .add("channels_last", c.model.channels_last)
      .add("ranks", ranks)
      .add("threads", threads)
      .add("workers", c.data.workers)
      .add("prefetch", c.data.prefetch)
      .add("data_path", c.data.data_path);
  return j;
}

std::string describe_line(const dml::TrainOptions& options, const dml::TrainConfig& c, int ranks, int threads) {
  return dml::str(c.model.name, c.model.small_input_stem ? " (small stem)" : "", ", ", options.crop_size,
                  " px, batch ", c.batches.batch_size, "/", options.batch_k, " per rank, ", ranks, " rank(s) x ",
                  threads, " thread(s), ", options.precision, c.model.channels_last ? " + channels-last" : "");
}

Layout gradient_layout(const dml::TrainConfig& c, int64_t num_classes, dml::Communicator& comm) {
  dml::EmbeddingNet net = dml::make_embedding_net(c.model, c.batches.seed);
  std::vector<torch::Tensor> trainable;
  for (auto& p : net->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  if (c.loss.learn_beta && num_classes > 0) trainable.push_back(torch::zeros({num_classes}).requires_grad_(true));
  Layout layout;
  for (const auto& p : trainable) {
    layout.parameters += p.numel();
    layout.bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  dml::GradientBuckets buckets(trainable, comm);
  layout.bucket_bytes = buckets.bucket_sizes_bytes();
  return layout;
}

std::string mb_list(const std::vector<int64_t>& bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) out += dml::str(i ? ", " : "", num(static_cast<double>(bytes[i]) / (1 << 20)));
  return out + " MiB";
}

}  // namespace dml::bench
