// The one file that knows Boost.Program_options for dist_train: flags (with the reference's names,
// defaults and help texts), --config INI files, and the command-line conventions (the last of a
// repeated flag wins; the command line wins over the file; defaults printed as people write them).
#include <boost/program_options.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/flag_format.h"
#include "dml/cli/options.h"
#include "dml/cli/train_config.h"
#include "dml/util/error.h"

namespace po = boost::program_options;

namespace dml {
namespace {

struct ListFlags {
  std::string steps, recall_k;
};

po::options_description make_description(TrainOptions& o, ListFlags& lists, std::string& config_file) {
  TrainConfig& c = o.config;
  using cli::value;
  po::options_description reference("Reference flags (MXNet Gluon embedding_learning example)");
  reference.add_options()
      ("data-path", value(&c.data.data_path), "directory holding the HDF5 shards of the train and test splits (made by dml_prepare)")
      ("embed-dim", value(&c.model.embed_dim), "dimensionality of image embedding")
      ("batch-size", value(&c.batches.batch_size),
       "training batch size per device (replica); the global batch is replicas x batch-size")
      ("batch-k", value(&o.batch_k), "number of images per class in a batch")
      ("gpus", value(&o.gpus),
       "GPUs of this rank, e.g. 0 or 0,2,5 (one replica each); '' or cpu = CPU; auto = the local rank's GPU if any")
      ("epochs", value(&c.run.epochs), "number of training epochs")
      ("optimizer", value(&o.optimizer), "optimizer: adam, sgd, adamw, rmsprop")
      ("lr", value(&c.network_optimizer.lr), "learning rate")
      ("lr-beta", value(&o.lr_beta), "learning rate for the per-class beta of the margin loss; <= 0 keeps beta fixed")
      ("margin", value(&c.loss.margin), "margin (alpha) of the margin loss")
      ("beta", value(&c.loss.beta_init), "initial value of beta")
      ("nu", value(&c.loss.nu), "regularization weight of beta")
      ("factor", value(&c.schedule.factor), "learning rate schedule factor")
      ("steps", po::value(&lists.steps)->default_value(cli::join(c.schedule.step_epochs)),
       "epochs at which to multiply the learning rates by --factor")
      ("wd", value(&c.network_optimizer.weight_decay), "weight decay (coupled L2 on the rescaled gradient, as the reference)")
      ("seed", value(&c.batches.seed), "random seed")
      ("model", value(&c.model.name),
       "backbone: resnet{18,34,50,101,152}_v1 (torchvision names), resnet{18,34,50,101,152}_v2, small_convnet, small_convnet_nobn")
      ("save-model-prefix", value(&c.run.save_model_prefix),
       "prefix of saved models: <prefix>-best.pt (inference) and <prefix>-last.pt (full state)")
      ("use-pretrained", cli::switch_value(&c.model.use_pretrained),
       "start from pretrained backbone weights (--pretrained-path); conv weights then train at 0.01 x lr")
      ("kvstore", value(&o.kvstore), "accepted for compatibility; gradients are summed with MPI (CPU) or NCCL (GPU)")
      ("log-interval", value(&c.run.log_interval), "iterations between log lines");

  po::options_description extra("dml flags");
  extra.add_options()
      ("help,h", "print this help and exit")
      ("config", po::value(&config_file), "INI file with the same long names (key = value); the command line wins")
      ("crop-size", value(&o.crop_size), "square crop (train: random, test: center)")
      ("threads", value(&o.threads), "torch threads per rank; 0 = cores / ranks on this node")
      ("workers", value(&c.data.workers), "loader threads per replica")
      ("prefetch", value(&c.data.prefetch), "batches prepared ahead per replica (>= 2)")
      ("resume", po::value(&c.run.resume), "continue from a <prefix>-last.pt checkpoint")
      ("resume-override", cli::switch_value(&c.run.resume_override),
       "with --resume: continue although options that change the run differ from the checkpoint (warns, listing them)")
      ("metrics-file", po::value(&c.run.metrics_file), "append JSON lines (training logs and evaluations) to this file")
      ("eval-interval", value(&c.run.eval_interval), "epochs between evaluations")
      ("eval-untrained", cli::switch_value(&c.run.eval_untrained),
       "also evaluate the model before training (printed beside the trained one)")
      ("skip-nonfinite", cli::switch_value(&c.run.skip_nonfinite),
       "skip (and count in the log) a step whose loss or gradients are NaN or inf, instead of stopping the run")
      ("time-phases", cli::switch_value(&c.run.time_phases),
       "time each phase of the step (data wait, forward, gather, sampling + loss, backward, all-reduce, optimiser) "
       "and print the breakdown at the end; synchronises the device at each phase, so training is slower")
      ("allreduce-overlap", value(&o.allreduce_overlap),
       "start the gradient buckets' all-reduce during backward (on), after it (off), or auto: on for GPU replicas, "
       "off on CPU ranks")
      ("freeze-bn", cli::switch_value(&c.freeze_bn),
       "BatchNorm in inference mode with frozen parameters (rank-count invariant runs)")
      ("pretrained-path", po::value(&c.model.pretrained_path),
       "weights file for --use-pretrained (made by launch/convert_torchvision.py)")
      ("small-input-stem", cli::switch_value(&c.model.small_input_stem), "3x3 stride-1 first conv, no max-pool (images <= 64 px)")
      ("precision", value(&o.precision),
       "backbone forward under autocast: fp32, bf16 (CPU or GPU) or fp16 (GPU); weights, gradients, loss stay fp32")
      ("channels-last", cli::switch_value(&c.model.channels_last), "NHWC layout for convolution weights and inputs")
      ("iterations-per-epoch", value(&c.run.iterations_per_epoch), "sampled batches per epoch")
      ("recall-k", po::value(&lists.recall_k)->default_value(cli::join(c.eval.ks)), "K values of Recall@K")
      ("nmi", cli::switch_value(&c.eval.nmi), "also compute NMI of k-means on the test embeddings")
      ("kmeans-restarts", value(&c.eval.kmeans_restarts), "k-means++ starts for NMI; the lowest inertia wins")
      ("sampler-cutoff", value(&c.sampling.cutoff), "lower distance cutoff of distance-weighted sampling")
      ("nonzero-loss-cutoff", value(&c.sampling.nonzero_loss_cutoff), "negatives must be closer than this")
      ("adam-epsilon", value(&c.network_optimizer.epsilon), "Adam epsilon (added to the uncorrected sqrt(v))")
      ("momentum", value(&c.network_optimizer.momentum), "SGD momentum (network with --optimizer sgd, and beta)")
      ("backend", value(&o.backend), "communicator: auto, single, mpi, nccl")
      ("collective-timeout", value(&o.collective_timeout),
       "seconds a collective may wait for the other ranks before the job aborts, naming the rank, step and "
       "operation (mpi backend); 0 = no limit")
      ("gpus-per-rank", value(&o.gpus_per_rank),
       "GPUs per rank when several ranks share a node: local rank r drives GPUs r*N..r*N+N-1 (0 = use --gpus)")
      ("cpu-replicas", value(&o.cpu_replicas), "replicas per rank on CPU (tests the multi-device path)")
      ("train-split", value(&c.data.train_split), "split name of the training shards")
      ("test-split", value(&c.data.test_split), "split name of the test shards")
      ("max-test-images", value(&c.eval.max_images), "evaluate on an evenly spaced subset of N test images (0 = all)")
      ("preload-max-mb", value(&o.preload_max_mb), "read a split into memory when it is at most this size")
      ("rank-local-shards", cli::switch_value(&c.data.rank_local_shards),
       "rank r of R opens only shards [r*S/R, (r+1)*S/R) of each split (S % R == 0; classes drawn per shard)")
      ("max-steps", value(&c.run.max_steps), "stop after this many steps in total (0 = no limit)")
      ("no-progress", "plain log lines, no progress bar");
  po::options_description all;
  all.add(reference).add(extra);
  return all;
}

}  // namespace

bool parse_options(int argc, const char* const* argv, TrainOptions& o) {
  o = TrainOptions{};
  ListFlags lists;
  std::string config_file;
  po::options_description description = make_description(o, lists, config_file);
  po::variables_map vm;
  try {
    po::store(cli::last_occurrences(po::command_line_parser(argc, argv).options(description).run()), vm);
    if (vm.count("help")) {
      std::cout << "Usage: dist_train [flags]   (under mpirun/srun for several ranks)\n" << description << "\n";
      return false;
    }
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      check(in.good(), "--config ", path, ": cannot open the file; check the path");
      po::store(cli::last_occurrences(po::parse_config_file(in, description)), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(str(e.what(), "; see dist_train --help"));
  }
  o.config.schedule.step_epochs = cli::parse_int_list(lists.steps, "steps");
  o.config.eval.ks = cli::parse_int_list(lists.recall_k, "recall-k");
  if (vm.count("no-progress")) o.config.run.progress = false;
  make_train_config_without_devices(o);  // every rule that needs no data, with flag names in the errors
  return true;
}

// The options (describe_options keys) that change the run: a resume compares exactly these with the
// checkpoint's. Not here: threads, workers, prefetch, preload, logging, evaluation schedule, epochs and
// max-steps (extending a run is fine), the devices and backend (the replica count is checked on its
// own), the save prefix and the resume flags.
const std::vector<std::string>& run_changing_options() {
  static const std::vector<std::string> keys = {
      "data-path", "train-split", "test-split", "crop-size", "rank-local-shards", "max-test-images",
      "model", "embed-dim", "use-pretrained", "small-input-stem", "freeze-bn", "batch-size", "batch-k",
      "margin", "beta", "nu", "sampler-cutoff", "nonzero-loss-cutoff", "optimizer", "lr", "lr-beta", "wd",
      "factor", "steps", "adam-epsilon", "momentum", "iterations-per-epoch", "seed"};
  return keys;
}

std::string describe_options(const TrainOptions& o) {
  const TrainConfig& c = o.config;
  std::ostringstream s;
  auto line = [&](const char* key, const auto& value) { s << key << " = " << value << "\n"; };
  line("data-path", c.data.data_path);
  line("train-split", c.data.train_split);
  line("test-split", c.data.test_split);
  line("crop-size", o.crop_size);
  line("workers", c.data.workers);
  line("prefetch", c.data.prefetch);
  line("preload-max-mb", o.preload_max_mb);
  line("rank-local-shards", c.data.rank_local_shards);
  line("max-test-images", c.eval.max_images);
  line("model", c.model.name);
  line("precision", o.precision);
  line("channels-last", c.model.channels_last);
  line("embed-dim", c.model.embed_dim);
  line("use-pretrained", c.model.use_pretrained);
  line("pretrained-path", c.model.pretrained_path);
  line("small-input-stem", c.model.small_input_stem);
  line("freeze-bn", c.freeze_bn);
  line("batch-size", c.batches.batch_size);
  line("batch-k", o.batch_k);
  line("margin", cli::format_number(c.loss.margin));
  line("beta", cli::format_number(c.loss.beta_init));
  line("nu", cli::format_number(c.loss.nu));
  line("sampler-cutoff", cli::format_number(c.sampling.cutoff));
  line("nonzero-loss-cutoff", cli::format_number(c.sampling.nonzero_loss_cutoff));
  line("optimizer", o.optimizer);
  line("lr", cli::format_number(c.network_optimizer.lr));
  line("lr-beta", cli::format_number(o.lr_beta));
  line("wd", cli::format_number(c.network_optimizer.weight_decay));
  line("factor", cli::format_number(c.schedule.factor));
  line("steps", cli::join(c.schedule.step_epochs));
  line("adam-epsilon", cli::format_number(c.network_optimizer.epsilon));
  line("momentum", cli::format_number(c.network_optimizer.momentum));
  line("epochs", c.run.epochs);
  line("iterations-per-epoch", c.run.iterations_per_epoch);
  line("seed", c.batches.seed);
  line("gpus", o.gpus);
  line("gpus-per-rank", o.gpus_per_rank);
  line("cpu-replicas", o.cpu_replicas);
  line("backend", o.backend);
  line("kvstore", o.kvstore);
  line("threads", o.threads);
  line("allreduce-overlap", o.allreduce_overlap);
  line("log-interval", c.run.log_interval);
  line("eval-interval", c.run.eval_interval);
  line("eval-untrained", c.run.eval_untrained);
  line("skip-nonfinite", c.run.skip_nonfinite);
  line("recall-k", cli::join(c.eval.ks));
  line("nmi", c.eval.nmi);
  line("kmeans-restarts", c.eval.kmeans_restarts);
  line("save-model-prefix", c.run.save_model_prefix);
  line("resume", c.run.resume);
  line("resume-override", c.run.resume_override);
  line("metrics-file", c.run.metrics_file);
  line("max-steps", c.run.max_steps);
  return s.str();
}

}  // namespace dml
