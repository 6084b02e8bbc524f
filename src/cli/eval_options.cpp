// dist_eval's flags, and how they combine with what the checkpoint records.
#include "dml/cli/eval_options.h"

#include <boost/program_options.hpp>

#include <iostream>

#include "cli/device_flags.h"
#include "cli/flag_format.h"
#include "dml/util/error.h"

namespace po = boost::program_options;

namespace dml {

bool parse_eval_options(int argc, const char* const* argv, EvalOptions& o) {
  o = EvalOptions{};
  using cli::value;
  po::options_description flags("dist_eval: evaluate a saved dml model (alone, or under mpirun/srun)");
  flags.add_options()
      ("help,h", "print this help and exit")
      ("checkpoint", po::value(&o.checkpoint), "the model: <prefix>-best.pt or <prefix>-last.pt (required)")
      ("data-path", po::value(&o.data_path), "shard directory (default: the one the checkpoint was trained on)")
      ("split", value(&o.split), "split to evaluate (same-set protocol), or the gallery with --query-split")
      ("query-split", po::value(&o.query_split), "query split against the --split gallery (In-Shop protocol)")
      ("model", po::value(&o.model), "expected model name (default: the checkpoint's)")
      ("embed-dim", value(&o.embed_dim), "expected embedding size (0: the checkpoint's)")
      ("crop-size", value(&o.crop_size), "center crop (0: the checkpoint's training crop)")
      ("batch-size", value(&o.batch_size), "images per forward (0: what dist_train's evaluation used)")
      ("recall-k", value(&o.recall_k), "K values of Recall@K")
      ("nmi", cli::switch_value(&o.nmi), "also compute NMI of k-means (k = classes)")
      ("kmeans-restarts", value(&o.kmeans_restarts), "k-means++ starts for NMI; the lowest inertia wins")
      ("max-images", value(&o.max_images), "evaluate an evenly spaced subset of N images per split (0 = all)")
      ("workers", value(&o.workers), "loader threads per replica")
      ("prefetch", value(&o.prefetch), "batches prepared ahead per replica (>= 2)")
      ("preload-max-mb", value(&o.preload_max_mb), "read a split into memory when it is at most this size")
      ("gpus", value(&o.gpus), "GPUs of this rank ('' or cpu = CPU; auto = the local rank's GPU if any)")
      ("gpus-per-rank", value(&o.gpus_per_rank), "local rank r drives GPUs r*N..r*N+N-1 (0 = use --gpus)")
      ("cpu-replicas", value(&o.cpu_replicas), "replicas per rank on the CPU")
      ("backend", value(&o.backend), "communicator: auto, single, mpi, nccl")
      ("threads", value(&o.threads), "torch threads per rank; 0 = cores / ranks on this node")
      ("metrics-json", po::value(&o.metrics_json), "write every metric to this JSON file")
      ("export", po::value(&o.export_path), "write embeddings, labels, ids and rows to this HDF5 file")
      ("overwrite", cli::switch_value(&o.overwrite), "replace existing --metrics-json / --export files");
  po::variables_map vm;
  try {
    po::store(cli::last_occurrences(po::command_line_parser(argc, argv).options(flags).run()), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(str(e.what(), "; see dist_eval --help"));
  }
  if (vm.count("help")) {
    std::cout << "Usage: dist_eval --checkpoint PREFIX-best.pt [flags]\n" << flags << "\n";
    return false;
  }
  check(!o.checkpoint.empty(), "--checkpoint is required: the <prefix>-best.pt or -last.pt that dist_train wrote");
  return true;
}

CheckpointEvaluationConfig make_eval_config(const EvalOptions& o, const CheckpointInfo& info, int local_rank) {
  auto recorded = [&](const char* key, const std::string& fallback) {
    auto it = info.options.find(key);
    return it == info.options.end() ? fallback : it->second;
  };
  check(o.model.empty() || o.model == info.model, "--model ", o.model, " does not match ", o.checkpoint,
        ", which holds a ", info.model, "; pass --model ", info.model, " (or omit it) or the right checkpoint");
  check(o.embed_dim == 0 || o.embed_dim == info.embed_dim, "--embed-dim ", o.embed_dim, " does not match ",
        o.checkpoint, ", whose embeddings have ", info.embed_dim, " dimensions; pass --embed-dim ", info.embed_dim,
        " (or omit it) or the right checkpoint");
  CheckpointEvaluationConfig c;
  c.checkpoint = o.checkpoint;
  c.model.name = info.model;
  c.model.embed_dim = info.embed_dim;
  c.model.small_input_stem = recorded("small-input-stem", "0") == "1";
  c.data.data_path = o.data_path.empty() ? recorded("data-path", DataConfig{}.data_path) : o.data_path;
  c.data.workers = o.workers;
  c.data.prefetch = o.prefetch;
  c.data.preload_max_bytes = o.preload_max_mb << 20;
  c.split = o.split;
  c.query_split = o.query_split;
  c.eval.crop_size = o.crop_size > 0 ? o.crop_size : std::stoll(recorded("crop-size", "224"));
  c.eval.batch_size =
      o.batch_size > 0 ? o.batch_size : evaluation_batch_size(std::stoll(recorded("batch-size", "64")));
  c.eval.out_channels = c.model.in_channels;
  c.eval.workers = o.workers;
  c.eval.prefetch = o.prefetch;
  c.eval.ks = cli::parse_int_list(o.recall_k, "recall-k");
  c.eval.nmi = o.nmi;
  c.eval.kmeans_restarts = o.kmeans_restarts;
  c.eval.seed = std::stoull(recorded("seed", "0"));
  c.eval.max_images = o.max_images;
  c.metrics_json = o.metrics_json;
  c.export_path = o.export_path;
  c.overwrite = o.overwrite;
  try {
    validate_eval_config(c.eval);
    validate_loader_threads(c.data.workers, c.data.prefetch);
    validate_model_options(c.model);
    parse_backend(o.backend);
    check_option(o.threads >= 0, "threads", "threads: ", o.threads, "; use 0 or a positive count");
  } catch (const OptionError& e) {
    throw Error(e.field() == "batch_size" ? "--batch-size: " + std::string(e.what())
                : e.field() == "max_images" ? "--max-images: " + std::string(e.what())
                                            : cli::flagged(e));
  }
  c.devices = cli::resolve_devices(cli::device_request(o.gpus, o.gpus_per_rank, o.cpu_replicas), local_rank);
  return c;
}

}  // namespace dml
