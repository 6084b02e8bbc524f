#pragma once
// Typed options of dist_train. Only src/cli/ knows Boost.Program_options and flag names; the rest of
// the code receives a TrainConfig (make_train_config, cli/train_config.h).
//
// Most flags set one field of a component's own option struct inside `config`, and take that
// field's default (the reference example's, written once in the component). The flags below
// `config` are the ones that are not a single component field: make_train_config derives the
// components' fields from them.
#include <cstdint>
#include <string>
#include <vector>

#include "dml/train/train_config.h"

namespace dml {

struct TrainOptions {
  TrainConfig config;  // devices, loss.learn_beta and the fields derived below are set by make_train_config

  int64_t batch_k = ClassBlocks{}.batch_k;     // sets config.batches.blocks and config.sampling.blocks
  int64_t crop_size = AugmentOptions{}.crop_size;  // training crop and evaluation center crop
  std::string optimizer = optimizer_name(OptimizerOptions{}.kind);  // the network's: adam, sgd, adamw, rmsprop
  double lr_beta = 0.1;                         // beta's SGD learning rate; <= 0 keeps beta fixed
  int64_t preload_max_mb = DataConfig{}.preload_max_bytes >> 20;
  std::string gpus = "auto";   // "auto", "" or "cpu", or a list "0,1" (one replica each)
  int gpus_per_rank = 0;       // > 0: local rank r drives GPUs r*N .. r*N+N-1 (overrides --gpus auto)
  int cpu_replicas = 1;        // replicas per rank on the CPU (exercises the multi-device path)
  std::string precision = "fp32";  // the backbone's forward: fp32 | bf16 | fp16 (config.model.precision)
  std::string backend = "auto";    // communicator: auto | single | mpi | nccl
  std::string allreduce_overlap = "auto";  // auto | on | off (config.run.allreduce_overlap)
  double collective_timeout = 300;  // seconds one collective may wait before the job aborts; 0 = no limit
  std::string kvstore = "device";  // accepted for compatibility with the reference; MPI/NCCL replace it
  int threads = 0;                 // torch threads per rank; 0 = cores / local ranks
};

// Parses argv (and --config FILE, an INI file with the same long names). A flag given twice takes its
// last value, so wrappers can pass "$@" after their own flags; the command line wins over the file.
// Returns false when --help was printed. Throws dml::Error naming the flag and the fix for syntax
// errors and for every rule that needs no data (make_train_config's checks, without the devices).
bool parse_options(int argc, const char* const* argv, TrainOptions& options);

// "key = value" lines of every resolved option, for the log and the checkpoint.
std::string describe_options(const TrainOptions& options);

// The describe_options keys of the options that change the run; a resume compares them with the
// checkpoint's (RunConfig::resume_compared_options).
const std::vector<std::string>& run_changing_options();

}  // namespace dml
