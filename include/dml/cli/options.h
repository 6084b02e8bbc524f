#pragma once
// Typed options of dist_train. Only src/cli/ knows Boost.Program_options; everything else
// receives these structs. Flags the reference MXNet Gluon example (example/gluon/embedding_learning
// in Apache MXNet) has keep its names and defaults; values it hard-codes are flags here.
#include <cstdint>
#include <string>
#include <vector>

namespace dml {

struct DataOptions {
  std::string data_path = "data/CUB_200_2011";  // directory holding train-*.h5 and test-*.h5 shards
  std::string train_split = "train";
  std::string test_split = "test";
  int64_t crop_size = 224;
  int workers = 2;                 // loader threads per replica
  int prefetch = 3;                // batches kept ready per replica
  int64_t max_test_images = 0;     // 0 = the whole test split
  int64_t preload_max_mb = 2048;   // splits up to this size are read into memory once
};

struct ModelConfig {
  std::string model = "resnet50_v2";
  int64_t embed_dim = 128;
  bool use_pretrained = false;
  std::string pretrained_path;     // empty = the documented default location for the model
  bool small_input_stem = false;
  bool freeze_bn = false;
};

struct ObjectiveOptions {
  int64_t batch_k = 5;
  double margin = 0.2;
  double beta = 1.2;
  double nu = 0.0;
  double sampler_cutoff = 0.5;
  double nonzero_loss_cutoff = 1.4;
};

struct OptimOptions {
  std::string optimizer = "adam";
  double lr = 1e-4;
  double lr_beta = 0.1;
  double wd = 1e-4;
  double factor = 0.5;
  std::vector<int64_t> steps = {12, 14, 16, 18};  // epochs
  double adam_epsilon = 1e-7;
  double momentum = 0.9;
};

struct RunOptions {
  int64_t batch_size = 70;         // per replica
  int64_t epochs = 20;
  int64_t iterations_per_epoch = 200;
  uint64_t seed = 123;
  std::string gpus = "auto";       // "auto": the local rank's GPU when CUDA is available, else CPU;
                                   // "" or "cpu": CPU; "0,1": those GPUs (one replica each)
  int64_t cpu_replicas = 1;        // replicas per rank on CPU (exercises the multi-device path)
  std::string backend = "auto";    // communicator: auto | single | mpi | nccl
  std::string kvstore = "device";  // accepted for compatibility; MPI/NCCL replace it
  int threads = 0;                 // torch threads per rank; 0 = cores / local ranks
  int64_t log_interval = 20;
  int64_t eval_interval = 1;       // epochs
  bool eval_untrained = false;     // also evaluate the model before training
  std::vector<int64_t> recall_k = {1, 2, 4, 8, 16};
  bool nmi = false;
  std::string save_model_prefix = "margin_loss_model";
  std::string resume;              // a <prefix>-last.pt checkpoint
  std::string metrics_file;        // JSON lines; empty = none
  int64_t max_steps = 0;           // stop after this many steps in total (0 = no limit)
  bool progress = true;            // progress bar on a terminal
};

struct TrainOptions {
  DataOptions data;
  ModelConfig model;
  ObjectiveOptions objective;
  OptimOptions optim;
  RunOptions run;
};

// Parses argv (and --config FILE, an INI file with the same long names; the command line wins).
// Returns false when --help was printed. Throws dml::Error naming the flag and the fix on bad values,
// including every check that needs no data: batch size a multiple of batch-k, positive sizes, lists.
bool parse_options(int argc, const char* const* argv, TrainOptions& options);

// "key = value" lines of every resolved option, for the log and the checkpoint.
std::string describe_options(const TrainOptions& options);

}  // namespace dml
