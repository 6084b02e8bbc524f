// The training loop owns the components and holds no math of its own: set-up in the constructor,
// then per step one call into each component: loaders -> replicas' forward -> distributed
// objective -> backward -> gradient
// reduction (local replicas, then across ranks) -> optimisers -> replica copy -> log.
#include "dml/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "dml/data/shard_set.h"
#include "dml/dist/broadcast_module.h"
#include "dml/dist/fault_injection.h"
#include "dml/dist/scalar_collectives.h"
#include "dml/dist/gradient_buckets.h"
#include "dml/model/param_groups.h"
#include "dml/optim/loss_scaler.h"
#include "dml/optim/lr_schedule.h"
#include "dml/optim/optimizer.h"
#include "dml/pipeline/loaders.h"
#include "dml/pipeline/normalize.h"
#include "dml/train/checkpoint.h"
#include "dml/train/devices.h"
#include "dml/train/distributed_objective.h"
#include "dml/train/evaluator.h"
#include "dml/train/replica_group.h"
#include "train/loss_window.h"
#include "train/split_access.h"
#include "dml/train/shard_image_source.h"
#include "dml/train/stop_signal.h"
#include "dml/train/training_log.h"
#include "dml/util/atomic_file.h"
#include "dml/util/error.h"
#include "dml/util/log.h"
#include "dml/util/phase_timer.h"

namespace dml {
namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<OptimizerParamGroup> network_groups(EmbeddingNet& net, bool use_pretrained) {
  std::vector<OptimizerParamGroup> groups;
  for (auto& g : parameter_groups(net, use_pretrained)) groups.push_back({g.name, g.params, g.lr_mult});
  return groups;
}
// Every rank reads the checkpoint itself, so it must be visible to all of them: the ranks agree on
// that before any of them loads, and the error names the ranks (and hosts) that lack the file.
void check_visible_everywhere(Communicator& comm, const std::string& path) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  torch::Tensor mine = torch::tensor({int64_t{std::filesystem::exists(path) ? 1 : 0}});
  if (comm.cuda_device() >= 0) mine = mine.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.cuda_device())));
  const torch::Tensor all = comm.all_gather(mine).cpu().contiguous();
  std::string missing;
  for (int64_t r = 0; r < all.numel(); ++r) {
    if (all[r].item<int64_t>() == 0) missing += str(missing.empty() ? "" : ", ", r);
  }
  if (missing.empty()) return;
  const bool me = !std::filesystem::exists(path);
  throw Error(str(path, ": the checkpoint to resume from is missing on rank(s) ", missing, " of ", comm.world_size(),
                  me ? str(" (this is rank ", comm.rank(), " on host ", host, ")") : std::string(),
                  "; every rank reads it, so the file must be visible to every rank: put it on a filesystem "
                  "shared by all nodes, or copy it to the same path on each node"));
}

}  // namespace

struct Trainer::State {
  State(const TrainConfig& c, Communicator& m) : config(c), comm(m) {}
  TrainConfig config;
  Communicator& comm;
  int64_t total_replicas = 0;
  int64_t global_batch = 0;
  std::optional<ShardSet> train_shards, test_shards;
  std::optional<GlobalBatchSampler> sampler;
  std::unique_ptr<ReplicaGroup> replicas;
  MarginLoss loss{nullptr};
  std::unique_ptr<Optimizer> net_optimizer, beta_optimizer;
  std::unique_ptr<GradientBuckets> buckets;
  std::vector<torch::Tensor> trainable;       // what the buckets synchronise (network, then beta)
  std::unique_ptr<LossScaler> scaler;         // fp16 only
  PhaseTimer timer;
  std::unique_ptr<DistributedObjective> objective;
  std::vector<std::unique_ptr<TrainLoader>> loaders;
  std::unique_ptr<Evaluator> evaluator;
  std::unique_ptr<TrainingLog> log;
  std::unique_ptr<LossWindow> losses;
  RunSignature signature;
  TrainingState state;
  TrainSummary summary;

  const std::vector<torch::Device>& devices() const { return config.devices; }
  std::string last_path() const { return config.run.save_model_prefix + "-last.pt"; }
  std::string best_path() const { return config.run.save_model_prefix + "-best.pt"; }
  void set_learning_rates(int64_t epoch);
  std::vector<int64_t> global_labels(uint64_t step) const;
  void synchronize_buffers();
  void train_step(uint64_t step, torch::Tensor& count_window);
  void evaluate(int64_t epoch, bool untrained, bool select_best);
  void save_last();
};

Trainer::Trainer(const TrainConfig& config, Communicator& comm) : s_(std::make_unique<State>(config, comm)) {
  State& s = *s_;
  TrainConfig& c = s.config;
  check(c.batches.blocks.batch_k == c.sampling.blocks.batch_k, "trainer: the sampler lays batches out in blocks of ",
        c.batches.blocks.batch_k, " but the loss reads blocks of ", c.sampling.blocks.batch_k,
        "; configure both from one ClassBlocks value");
  check_replica_devices(c.devices, comm);
  // Checkpoints: rank 0 writes them, so rank 0 checks that it can before any data or model work,
  // and every rank fails with it (not after an epoch of training).
  const std::string save_problem = comm.rank() == 0 ? file_write_problem(s.last_path()) : std::string();
  if (any_rank(comm, !save_problem.empty())) {
    throw OptionError("save_model_prefix", save_problem.empty() ? "rank 0 cannot write its checkpoints" : save_problem);
  }
  s.total_replicas = static_cast<int64_t>(c.devices.size()) * comm.world_size();
  s.global_batch = s.total_replicas * c.batches.batch_size;
  const torch::Device primary = c.devices.front();
  const uint64_t seed = c.batches.seed;

  // Data: both splits validated before any model work.
  check_data_path(c.data.data_path);
  s.train_shards = open_split(c.data, c.data.train_split, comm);
  s.test_shards = open_split(c.data, c.data.test_split, comm);
  c.batches.replicas = s.total_replicas;
  std::vector<int64_t> shard_of_class;
  if (c.data.rank_local_shards) {
    c.batches.shard_groups = s.train_shards->total_shards();
    shard_of_class = classes_to_shards(*s.train_shards);
    c.eval.rank_local = true;
    log_resident_data(comm, *s.train_shards, *s.test_shards);
  }
  s.sampler.emplace(s.train_shards->labels(), s.train_shards->info().num_classes, c.batches, shard_of_class);

  // Model replicas, identical on every rank (checked), rank 0's weights broadcast.
  s.replicas = std::make_unique<ReplicaGroup>(c.model, c.freeze_bn, seed, c.devices);
  check_same_module(comm, *s.replicas->primary(), "model");
  broadcast_module(comm, *s.replicas->primary(), /*root=*/0);
  s.replicas->copy_primary_to_replicas();

  c.loss.num_classes = s.train_shards->info().num_classes;
  s.loss = MarginLoss(c.loss);
  s.loss->to(primary);

  // The reference rescales every gradient by 1 / (global batch) before the optimiser.
  c.network_optimizer.rescale_grad = 1.0 / static_cast<double>(s.global_batch);
  c.beta_optimizer.rescale_grad = c.network_optimizer.rescale_grad;
  s.net_optimizer = std::make_unique<Optimizer>(network_groups(s.replicas->primary(), c.model.use_pretrained),
                                                c.network_optimizer);
  std::vector<torch::Tensor> synced = s.replicas->primary()->parameters();
  if (c.loss.learn_beta) {
    s.beta_optimizer = std::make_unique<Optimizer>(
        std::vector<OptimizerParamGroup>{{"beta", s.loss->parameters(), 1.0}}, c.beta_optimizer);
    for (auto& p : s.loss->parameters()) synced.push_back(p);
  }
  for (auto& p : synced) {
    if (p.requires_grad()) s.trainable.push_back(p);
  }
  // Overlap needs each gradient complete when backward produces it: one replica per rank.
  const RunConfig::Overlap mode = c.run.allreduce_overlap;
  const bool overlap = c.devices.size() == 1 && (mode == RunConfig::Overlap::kOn ||
                                                 (mode == RunConfig::Overlap::kAuto && primary.is_cuda()));
  if (mode == RunConfig::Overlap::kOn && c.devices.size() > 1) {
    log::warn("train", "--allreduce-overlap on needs one replica per rank; this rank has several, so the buckets "
                       "are reduced after backward");
  }
  s.buckets = std::make_unique<GradientBuckets>(s.trainable, comm, GradientBuckets::kDefaultBucketBytes,
                                                GradientBuckets::kDefaultFirstBucketBytes, overlap);
  if (comm.world_size() > 1) {
    log::info("train", str("gradient all-reduce: ", s.buckets->num_buckets(), " buckets, ",
                           s.buckets->overlaps_backward() ? "started during backward" : "after backward"));
  }
  if (c.model.precision == Precision::kFp16) s.scaler = std::make_unique<LossScaler>();
  s.objective = std::make_unique<DistributedObjective>(comm, s.loss, c.sampling, seed);

  s.signature = {c.model.name, c.model.embed_dim, c.batches.batch_size, c.batches.blocks.batch_k, s.total_replicas,
                 static_cast<int64_t>(seed), optimizer_name(c.network_optimizer.kind), c.run.iterations_per_epoch,
                 c.run.options_text,    c.run.resume_compared_options, c.run.resume_override,
                 c.run.resume_override_hint};
  if (!c.run.resume.empty()) {
    check_visible_everywhere(comm, c.run.resume);
    s.state = load_checkpoint(c.run.resume, s.replicas->primary(), s.loss, *s.net_optimizer, s.beta_optimizer.get(), s.signature);
    s.replicas->copy_primary_to_replicas();
    log::info("ckpt", str("resumed from ", c.run.resume, " at epoch ", s.state.epoch, ", step ", s.state.step));
    if (s.state.best_epoch >= 0) {  // the final table shows the same best as an uninterrupted run
      s.summary.best = s.state.best_metrics;
      s.summary.has_best = true;
      s.summary.best_epoch = s.state.best_epoch;
    }
  }

  const ImageSource train_source = make_image_source(*s.train_shards);
  const int64_t per_rank = static_cast<int64_t>(c.devices.size());
  for (int64_t j = 0; j < per_rank; ++j) {
    const int64_t replica = comm.rank() * per_rank + j;
    s.loaders.push_back(std::make_unique<TrainLoader>(train_source, *s.sampler, replica, c.augment, s.state.step,
                                                      c.data.workers, c.data.prefetch, c.devices[j].is_cuda()));
  }
  s.evaluator = std::make_unique<Evaluator>(comm, make_image_source(*s.test_shards), c.eval);
  s.log = std::make_unique<TrainingLog>(comm.rank() == 0, c.run.metrics_file, c.run.progress);
  s.timer = PhaseTimer(c.run.time_phases, primary.is_cuda() ? std::function<void()>([] { torch::cuda::synchronize(); })
                                                             : std::function<void()>());
  s.losses = std::make_unique<LossWindow>(
      comm, primary, std::min(c.run.log_interval, c.run.iterations_per_epoch), c.run.skip_nonfinite,
      str(s.last_path(), " and ", s.best_path(), " keep the last good state (resume from ", s.last_path(), ")"));

  const int64_t k = c.batches.blocks.batch_k;
  log::info("train", str("ranks ", comm.world_size(), " (", comm.backend_name(), "), replicas per rank ", per_rank,
                         " on ", primary.str(), ", global batch ", s.global_batch, " = ", s.global_batch / k,
                         " classes x ", k, "; train ", s.train_shards->size(), " images / ",
                         s.train_shards->info().num_classes, " classes, test ", s.evaluator->num_images(), " images"));
}

Trainer::~Trainer() = default;

// The labels of the whole global batch. Every rank knows them from the sampler, except with
// rank-local shards: then a rank knows only its own shards' classes, and the ranks exchange their
// slices (one small all-gather per step, in that mode only).
std::vector<int64_t> Trainer::State::global_labels(uint64_t step) const {
  std::vector<int64_t> labels = sampler->global_labels(step);
  if (!config.data.rank_local_shards) return labels;
  const int64_t per_rank = static_cast<int64_t>(devices().size()) * config.batches.batch_size;
  torch::Tensor mine = torch::tensor(std::vector<int64_t>(labels.begin() + comm.rank() * per_rank,
                                                          labels.begin() + (comm.rank() + 1) * per_rank));
  if (comm.cuda_device() >= 0) mine = mine.to(devices().front());
  const torch::Tensor all = comm.all_gather(mine).cpu().contiguous();
  return std::vector<int64_t>(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel());
}

void Trainer::State::set_learning_rates(int64_t epoch) {
  const LrSchedule& schedule = config.schedule;
  net_optimizer->set_lr(scheduled_lr(config.network_optimizer.lr, schedule.factor, schedule.step_epochs, epoch));
  if (beta_optimizer) {
    beta_optimizer->set_lr(scheduled_lr(config.beta_optimizer.lr, schedule.factor, schedule.step_epochs, epoch));
  }
}

// BatchNorm running statistics drift apart across ranks (each sees its own batches). Before every
// evaluation and checkpoint all ranks take rank 0's, so every rank embeds its test slice with the
// same model, -best.pt reproduces the logged metrics, and a resumed run starts where every rank of
// the uninterrupted one stood.
void Trainer::State::synchronize_buffers() {
  broadcast_module(comm, *replicas->primary(), /*root=*/0);
  replicas->copy_primary_to_replicas();
}

void Trainer::State::train_step(uint64_t step, torch::Tensor& count_window) {
  const torch::Device primary = devices().front();
  net_optimizer->zero_grad();
  if (beta_optimizer) beta_optimizer->zero_grad();
  comm.set_step(static_cast<int64_t>(step));             // for the collective timeout's message
  fault_injection::before_train_read(comm.rank(), step);  // tests only: DML_FAULT_INJECT
  timer.start();
  std::vector<Batch> batches;
  for (int64_t j = 0; j < replicas->size(); ++j) {
    batches.push_back(loaders[j]->next());
    check(batches.back().step == step, "loader of replica ", j, " returned step ", batches.back().step, " for step ", step);
  }
  timer.mark("data_wait");
  std::vector<torch::Tensor> embeddings;
  for (int64_t j = 0; j < replicas->size(); ++j) {
    const torch::Tensor x = normalize_images(batches[j].images, replicas->device(j));
    embeddings.push_back(replicas->replica(j)->forward(x).to(primary));
  }
  timer.mark("forward");
  ObjectiveResult result = objective->compute(torch::cat(embeddings), global_labels(step), step, &timer);
  if (fault_injection::nan_loss(comm.rank(), step)) result.loss = result.loss * std::nan("");
  const double scale = scaler ? scaler->scale() : 1.0;
  buckets->begin_backward();
  (scaler ? result.loss * scale : result.loss).backward();
  timer.mark("backward");
  replicas->reduce_gradients_to_primary();
  buckets->synchronize();
  timer.mark("allreduce");
  // After the all-reduce every rank holds the same gradients, so their check agrees across ranks.
  torch::Tensor gradients_finite = buckets->all_finite();
  bool overflowed = false;
  if (scaler) {
    // fp16: overflowing gradients are expected while the scale settles; the scaler skips such a
    // step and lowers the scale (a host read per step, as any dynamic loss scaler needs).
    overflowed = any_rank(comm, !gradients_finite.item<bool>());
    scaler->update(overflowed);
    if (!overflowed) {
      torch::NoGradGuard no_grad;
      for (auto& p : trainable) p.mutable_grad().mul_(1.0 / scale);
    }
    gradients_finite = torch::ones({}, gradients_finite.options());
  }
  const torch::Tensor finite = torch::isfinite(result.loss.detach()).logical_and(gradients_finite);
  const bool skip = losses->record(static_cast<int64_t>(step) + 1, result.loss, finite);
  timer.mark("finite_check");
  if (!skip && !overflowed) {
    net_optimizer->step();
    if (beta_optimizer) beta_optimizer->step();
  }
  replicas->copy_primary_to_replicas();
  count_window.add_(result.active_count.detach());
  timer.mark("optimizer");
}

void Trainer::State::evaluate(int64_t epoch, bool untrained, bool select_best) {
  losses->flush();  // a non-finite step stops the run here, before it is evaluated or saved
  synchronize_buffers();
  const auto start = Clock::now();
  RetrievalMetrics metrics = evaluator->evaluate(*replicas).metrics;
  replicas->train(true);
  if (comm.rank() != 0) return;
  const std::string label = untrained ? "untrained" : "epoch " + std::to_string(epoch);
  std::string line = str("[", label, "] ");
  for (size_t i = 0; i < metrics.ks.size(); ++i) line += str("R@", metrics.ks[i], " ", metrics.recall_at_k[i], "  ");
  line += str("MAP@R ", metrics.map_at_r, "  (", format_duration(seconds_since(start)), ")");
  log::info("eval", line);
  log->eval_record(epoch, state.step, untrained ? "untrained" : "trained", metrics_json_fields(metrics));
  if (untrained) {
    summary.untrained = metrics;
    summary.has_untrained = true;
    return;
  }
  summary.last = metrics;
  summary.has_last = true;
  if (!select_best) return;
  const double r1 = metrics.recall_at_k.empty() ? 0.0 : metrics.recall_at_k.front();
  if (r1 > state.best_recall_at_1) {
    state.best_recall_at_1 = r1;
    summary.best = metrics;
    summary.has_best = true;
    summary.best_epoch = epoch;
    state.best_epoch = epoch;
    state.best_metrics = metrics;
    save_inference_model(best_path(), replicas->primary(), signature);
    log::info("ckpt", str("new best Recall@", metrics.ks.front(), " ", r1, ": wrote ", best_path()));
  }
}

void Trainer::State::save_last() {
  losses->flush();
  synchronize_buffers();
  if (comm.rank() == 0) {
    save_checkpoint(last_path(), replicas->primary(), loss, *net_optimizer, beta_optimizer.get(), state, signature);
  }
  comm.barrier();
}

TrainSummary Trainer::run() {
  State& s = *s_;
  const RunConfig& run = s.config.run;
  const int64_t per_epoch = run.iterations_per_epoch;
  int64_t total_steps = run.epochs * per_epoch;
  if (run.max_steps > 0) total_steps = std::min(total_steps, run.max_steps);
  const torch::Device primary = s.devices().front();
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(primary);
  torch::Tensor count_window = torch::zeros({}, opts);

  if (run.eval_untrained && s.state.step == 0) s.evaluate(0, /*untrained=*/true, /*select_best=*/false);
  s.replicas->train(true);
  const auto run_start = Clock::now();
  auto window_start = Clock::now();
  int64_t window_steps = 0, steps_run = 0;
  s.set_learning_rates(s.state.step / per_epoch);
  while (s.state.step < total_steps) {
    // The stop signal (SIGTERM, SIGUSR1) is agreed on at log boundaries only (one tiny collective per
    // --log-interval steps, none in between).
    const bool log_boundary = (s.state.step % per_epoch) % run.log_interval == 0;
    if (log_boundary && any_rank(s.comm, stop_requested())) {
      log::info("train", str("stop requested: checkpointing at step ", s.state.step));
      s.save_last();
      s.summary.stopped_by_signal = true;
      break;
    }
    const int64_t epoch = s.state.step / per_epoch;
    if (s.state.step % per_epoch == 0) s.set_learning_rates(epoch);
    s.train_step(static_cast<uint64_t>(s.state.step), count_window);
    ++s.state.step;
    ++window_steps;
    ++steps_run;
    const int64_t iteration = s.state.step - epoch * per_epoch;  // 1-based within the epoch
    s.log->progress(epoch, iteration, per_epoch);
    if (iteration % run.log_interval == 0 || iteration == per_epoch) {
      const LossWindowSummary window = s.losses->take();  // the global loss: sum over ranks of their shares
      const double elapsed = seconds_since(window_start);
      TrainRecord r;
      r.epoch = epoch;
      r.iteration = iteration;
      r.step = s.state.step;
      r.loss = window.loss;
      r.skipped_nonfinite = s.losses->skipped_total();
      if (s.scaler) r.loss_scale = s.scaler->scale();
      r.active_pairs = count_window.item<double>() / window_steps;
      r.beta_mean = s.loss->beta().mean().item<double>();
      r.lr = s.net_optimizer->lr();
      r.images_per_sec = static_cast<double>(window_steps * s.global_batch) / std::max(elapsed, 1e-9);
      r.eta_seconds = static_cast<double>(total_steps - s.state.step) * elapsed / window_steps;
      s.log->train_record(r);
      count_window.zero_();
      window_steps = 0;
      window_start = Clock::now();
      s.timer.mark("log");  // evaluations and checkpoints below are not charged to any phase
    }
    const bool epoch_done = s.state.step % per_epoch == 0;
    if (epoch_done) {
      s.state.epoch = epoch + 1;
      if ((epoch + 1) % run.eval_interval == 0 || s.state.step == total_steps) {
        s.evaluate(epoch, /*untrained=*/false, /*select_best=*/true);
      }
      s.save_last();
      window_start = Clock::now();
    } else if (s.state.step == total_steps) {
      // --max-steps ended the run mid-epoch: report, but choose -best.pt only at epoch ends, as an
      // uninterrupted run would.
      s.evaluate(epoch, /*untrained=*/false, /*select_best=*/false);
      s.save_last();
    }
  }
  s.summary.steps_run = steps_run;
  s.summary.phase_seconds = s.timer.totals();
  s.summary.images_per_sec = static_cast<double>(steps_run * s.global_batch) / std::max(seconds_since(run_start), 1e-9);
  s.log->end_progress();
  return s.summary;
}

}  // namespace dml
