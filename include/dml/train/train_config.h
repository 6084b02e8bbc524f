#pragma once
// Everything a training run needs, in the components' own option structs; their default values are
// the reference example's and are written there, once. The configuration is built at the edge (the
// command line, cli/train_config.h) and handed to the Trainer, which fills in only what depends on the
// job itself: the replica count of the sampler, the training classes of the loss, and the gradient
// rescale 1 / (global batch) of the optimisers.
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dml/loss/distance_weighted_sampling.h"
#include "dml/loss/margin_loss.h"
#include "dml/model/embedding_net.h"
#include "dml/optim/lr_schedule.h"
#include "dml/optim/optimizer.h"
#include "dml/pipeline/augment.h"
#include "dml/pipeline/batch_sampler.h"
#include "dml/train/evaluator.h"

namespace dml {

struct DataConfig {
  std::string data_path = "data/CUB_200_2011";  // directory holding the <split>-*.h5 shards
  std::string train_split = "train";
  std::string test_split = "test";
  int64_t preload_max_bytes = int64_t{2048} << 20;  // a split up to this size is read into memory once
  int workers = 2;                                  // loader threads per replica (>= 1)
  int prefetch = 3;                                 // batches kept ready per replica (>= 2)
  // Rank r of R opens only the shards [r*S/R, (r+1)*S/R) of each split (S % R == 0), for training and
  // evaluation, and the class sequence is stratified by shard (see batch_sampler.h).
  bool rank_local_shards = false;
};

struct RunConfig {
  int64_t epochs = 20;
  int64_t iterations_per_epoch = 200;  // an epoch is this many sampled batches, not a pass over the data
  int64_t max_steps = 0;               // stop after this many steps in total (0 = no limit)
  int64_t log_interval = 20;           // iterations between log lines
  int64_t eval_interval = 1;           // epochs between evaluations
  bool eval_untrained = false;         // also evaluate the model before training
  std::string save_model_prefix = "margin_loss_model";  // <prefix>-best.pt and <prefix>-last.pt
  std::string resume;                  // a <prefix>-last.pt checkpoint to continue from; empty = none
  // Keys of options_text that change the run (set by the command line, the one list of them): a
  // resume refuses a checkpoint whose values differ, listing each, unless resume_override (then it
  // warns with the same list). resume_override_hint says how to override, for the error.
  std::vector<std::string> resume_compared_options;
  bool resume_override = false;
  std::string resume_override_hint;
  // A step whose loss or gradients are not finite (NaN, inf): false = stop the run with the step and
  // the last finite loss (checkpoints keep the last good state); true = skip its optimiser update,
  // count it in the log and go on (costs one host read and one small collective per step).
  bool skip_nonfinite = false;
  // Time each phase of every step (TrainSummary::phase_seconds), synchronising the device at each
  // phase boundary: slower, for benchmarks and --time-phases.
  bool time_phases = false;
  // When gradient buckets start their all-reduce: during backward, as soon as each is complete
  // (needs one replica per rank), or after it. kAuto: during backward on GPUs, where the network
  // moves the data while the GPU computes; after it on CPU ranks, which have no idle core to run
  // MPI's progress on (measured on 2 ranks x 1 core: overlap about 5% slower).
  enum class Overlap { kAuto, kOn, kOff };
  Overlap allreduce_overlap = Overlap::kAuto;
  std::string metrics_file;            // JSON lines; empty = none
  bool progress = true;                // progress bar on a terminal
  std::string options_text;            // every resolved option, "key = value" lines: logged and checkpointed
};

// epochs, iterations_per_epoch, log_interval, eval_interval > 0; max_steps >= 0; a save prefix.
// Throws OptionError naming the field.
void validate_run_config(const RunConfig& run);

struct TrainConfig {
  DataConfig data;
  std::vector<c10::Device> devices;  // this rank's replicas, one model each (resolve_replica_devices)
  ModelOptions model;
  bool freeze_bn = false;            // BatchNorm in inference mode with frozen parameters
  // The sampler lays batches out in batches.blocks and the loss reads positives from sampling.blocks:
  // the command line sets both from one --batch-k, and the Trainer refuses a configuration where they
  // differ. batches.replicas is set by the Trainer (ranks x devices).
  BatchPlanOptions batches;
  SamplingOptions sampling;
  MarginLossOptions loss;                // num_classes is set by the Trainer from the training split
  OptimizerOptions network_optimizer;    // rescale_grad is set by the Trainer
  OptimizerOptions beta_optimizer;       // used when loss.learn_beta; rescale_grad set by the Trainer
  LrSchedule schedule;                   // applies to both optimisers
  AugmentOptions augment;                // training crop and flip
  EvalConfig eval;
  RunConfig run;
};

}  // namespace dml
