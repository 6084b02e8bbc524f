// The one file that knows Boost.Program_options: flags (with the reference's names, defaults and
// help texts), --config INI files, and validation that needs no data.
#include <boost/program_options.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include "dml/cli/options.h"
#include "dml/util/error.h"

namespace po = boost::program_options;

namespace dml {
namespace {

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int64_t> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    try {
      size_t used = 0;
      values.push_back(std::stoll(item, &used));
      check(used == item.size(), "trailing characters");
    } catch (const std::exception&) {
      throw Error(str("--", flag, ": '", text, "' is not a comma-separated list of integers (e.g. 12,14,16,18)"));
    }
  }
  return values;
}

std::string join(const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + std::to_string(values[i]);
  return out;
}

struct ListFlags {
  std::string steps, recall_k;
};

po::options_description make_description(TrainOptions& o, ListFlags& lists, std::string& config_file) {
  po::options_description reference("Reference flags (MXNet Gluon embedding_learning example)");
  reference.add_options()
      ("data-path", po::value(&o.data.data_path)->default_value(o.data.data_path),
       "directory holding the HDF5 shards of the train and test splits (made by dml_prepare)")
      ("embed-dim", po::value(&o.model.embed_dim)->default_value(o.model.embed_dim), "dimensionality of image embedding")
      ("batch-size", po::value(&o.run.batch_size)->default_value(o.run.batch_size),
       "training batch size per device (replica); the global batch is replicas x batch-size")
      ("batch-k", po::value(&o.objective.batch_k)->default_value(o.objective.batch_k), "number of images per class in a batch")
      ("gpus", po::value(&o.run.gpus)->default_value(o.run.gpus),
       "GPUs of this rank, e.g. 0 or 0,2,5 (one replica each); '' or cpu = CPU; auto = the local rank's GPU if any")
      ("epochs", po::value(&o.run.epochs)->default_value(o.run.epochs), "number of training epochs")
      ("optimizer", po::value(&o.optim.optimizer)->default_value(o.optim.optimizer), "optimizer: adam, sgd, adamw, rmsprop")
      ("lr", po::value(&o.optim.lr)->default_value(o.optim.lr), "learning rate")
      ("lr-beta", po::value(&o.optim.lr_beta)->default_value(o.optim.lr_beta),
       "learning rate for the per-class beta of the margin loss; <= 0 keeps beta fixed")
      ("margin", po::value(&o.objective.margin)->default_value(o.objective.margin), "margin (alpha) of the margin loss")
      ("beta", po::value(&o.objective.beta)->default_value(o.objective.beta), "initial value of beta")
      ("nu", po::value(&o.objective.nu)->default_value(o.objective.nu), "regularization weight of beta")
      ("factor", po::value(&o.optim.factor)->default_value(o.optim.factor), "learning rate schedule factor")
      ("steps", po::value(&lists.steps)->default_value(join(o.optim.steps)), "epochs at which to multiply the learning rates by --factor")
      ("wd", po::value(&o.optim.wd)->default_value(o.optim.wd), "weight decay (coupled L2 on the rescaled gradient, as the reference)")
      ("seed", po::value(&o.run.seed)->default_value(o.run.seed), "random seed")
      ("model", po::value(&o.model.model)->default_value(o.model.model),
       "backbone: resnet{18,34,50,101,152}_v1 (torchvision names), resnet{18,34,50,101,152}_v2, small_convnet, small_convnet_nobn")
      ("save-model-prefix", po::value(&o.run.save_model_prefix)->default_value(o.run.save_model_prefix),
       "prefix of saved models: <prefix>-best.pt (inference) and <prefix>-last.pt (full state)")
      ("use-pretrained", po::bool_switch(&o.model.use_pretrained), "start from pretrained backbone weights (--pretrained-path); conv weights then train at 0.01 x lr")
      ("kvstore", po::value(&o.run.kvstore)->default_value(o.run.kvstore),
       "accepted for compatibility; gradients are summed with MPI (CPU) or NCCL (GPU)")
      ("log-interval", po::value(&o.run.log_interval)->default_value(o.run.log_interval), "iterations between log lines");

  po::options_description extra("dml flags");
  extra.add_options()
      ("help,h", "print this help and exit")
      ("config", po::value(&config_file), "INI file with the same long names (key = value); the command line wins")
      ("crop-size", po::value(&o.data.crop_size)->default_value(o.data.crop_size), "square crop (train: random, test: center)")
      ("threads", po::value(&o.run.threads)->default_value(o.run.threads), "torch threads per rank; 0 = cores / ranks on this node")
      ("workers", po::value(&o.data.workers)->default_value(o.data.workers), "loader threads per replica")
      ("prefetch", po::value(&o.data.prefetch)->default_value(o.data.prefetch), "batches prepared ahead per replica (>= 2)")
      ("resume", po::value(&o.run.resume), "continue from a <prefix>-last.pt checkpoint")
      ("metrics-file", po::value(&o.run.metrics_file), "append JSON lines (training logs and evaluations) to this file")
      ("eval-interval", po::value(&o.run.eval_interval)->default_value(o.run.eval_interval), "epochs between evaluations")
      ("eval-untrained", po::bool_switch(&o.run.eval_untrained), "also evaluate the model before training (printed beside the trained one)")
      ("freeze-bn", po::bool_switch(&o.model.freeze_bn), "BatchNorm in inference mode with frozen parameters (rank-count invariant runs)")
      ("pretrained-path", po::value(&o.model.pretrained_path), "weights file for --use-pretrained (made by launch/convert_torchvision.py)")
      ("small-input-stem", po::bool_switch(&o.model.small_input_stem), "3x3 stride-1 first conv, no max-pool (images <= 64 px)")
      ("iterations-per-epoch", po::value(&o.run.iterations_per_epoch)->default_value(o.run.iterations_per_epoch), "sampled batches per epoch")
      ("recall-k", po::value(&lists.recall_k)->default_value(join(o.run.recall_k)), "K values of Recall@K")
      ("nmi", po::bool_switch(&o.run.nmi), "also compute NMI of k-means on the test embeddings")
      ("sampler-cutoff", po::value(&o.objective.sampler_cutoff)->default_value(o.objective.sampler_cutoff), "lower distance cutoff of distance-weighted sampling")
      ("nonzero-loss-cutoff", po::value(&o.objective.nonzero_loss_cutoff)->default_value(o.objective.nonzero_loss_cutoff), "negatives must be closer than this")
      ("adam-epsilon", po::value(&o.optim.adam_epsilon)->default_value(o.optim.adam_epsilon), "Adam epsilon (added to the uncorrected sqrt(v))")
      ("momentum", po::value(&o.optim.momentum)->default_value(o.optim.momentum), "SGD momentum (network with --optimizer sgd, and beta)")
      ("backend", po::value(&o.run.backend)->default_value(o.run.backend), "communicator: auto, single, mpi, nccl")
      ("cpu-replicas", po::value(&o.run.cpu_replicas)->default_value(o.run.cpu_replicas), "replicas per rank on CPU (tests the multi-device path)")
      ("train-split", po::value(&o.data.train_split)->default_value(o.data.train_split), "split name of the training shards")
      ("test-split", po::value(&o.data.test_split)->default_value(o.data.test_split), "split name of the test shards")
      ("max-test-images", po::value(&o.data.max_test_images)->default_value(o.data.max_test_images), "evaluate on the first N test images only (0 = all)")
      ("preload-max-mb", po::value(&o.data.preload_max_mb)->default_value(o.data.preload_max_mb), "read a split into memory when it is at most this size")
      ("max-steps", po::value(&o.run.max_steps)->default_value(o.run.max_steps), "stop after this many steps in total (0 = no limit)")
      ("no-progress", "plain log lines, no progress bar");
  po::options_description all;
  all.add(reference).add(extra);
  return all;
}

void validate(const TrainOptions& o) {
  auto positive = [](int64_t v, const char* flag) { check(v > 0, "--", flag, " must be positive, got ", v); };
  positive(o.run.batch_size, "batch-size");
  positive(o.objective.batch_k, "batch-k");
  positive(o.run.epochs, "epochs");
  positive(o.run.iterations_per_epoch, "iterations-per-epoch");
  positive(o.run.log_interval, "log-interval");
  positive(o.run.eval_interval, "eval-interval");
  positive(o.model.embed_dim, "embed-dim");
  positive(o.data.crop_size, "crop-size");
  positive(o.run.cpu_replicas, "cpu-replicas");
  check(o.objective.batch_k >= 2, "--batch-k must be at least 2 (an anchor needs a positive), got ", o.objective.batch_k);
  check(o.run.batch_size % o.objective.batch_k == 0, "--batch-size ", o.run.batch_size,
        " is not a multiple of --batch-k ", o.objective.batch_k, "; use e.g. --batch-size ",
        (o.run.batch_size / o.objective.batch_k + 1) * o.objective.batch_k);
  check(o.run.batch_size / o.objective.batch_k >= 2, "--batch-size / --batch-k must be at least 2 classes per replica "
        "(negatives come from other classes), got ", o.run.batch_size / o.objective.batch_k);
  check(o.data.prefetch >= 2, "--prefetch must be at least 2, got ", o.data.prefetch);
  check(o.data.workers >= 1, "--workers must be at least 1, got ", o.data.workers);
  check(o.run.threads >= 0, "--threads must be >= 0, got ", o.run.threads);
  check(o.optim.lr > 0, "--lr must be positive, got ", o.optim.lr);
  check(o.optim.factor > 0, "--factor must be positive, got ", o.optim.factor);
  check(o.optim.wd >= 0, "--wd must be >= 0, got ", o.optim.wd);
  check(!o.run.recall_k.empty(), "--recall-k must name at least one K");
  for (int64_t k : o.run.recall_k) check(k > 0, "--recall-k values must be positive, got ", k);
  check(o.objective.sampler_cutoff > 0 && o.objective.sampler_cutoff < o.objective.nonzero_loss_cutoff,
        "--sampler-cutoff must be in (0, --nonzero-loss-cutoff)");
  check(o.run.save_model_prefix.empty() == false, "--save-model-prefix must not be empty");
  for (const char* name : {"auto", "single", "mpi", "nccl"}) {
    if (o.run.backend == name) return;
  }
  throw Error(str("--backend '", o.run.backend, "' is unknown; use auto, single, mpi or nccl"));
}

}  // namespace

bool parse_options(int argc, const char* const* argv, TrainOptions& o) {
  ListFlags lists;
  std::string config_file;
  po::options_description description = make_description(o, lists, config_file);
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, description), vm);
    if (vm.count("help")) {
      std::cout << "Usage: dist_train [flags]   (under mpirun/srun for several ranks)\n" << description << "\n";
      return false;
    }
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      check(in.good(), "--config ", path, ": cannot open the file; check the path");
      po::store(po::parse_config_file(in, description), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(str(e.what(), "; see dist_train --help"));
  }
  o.optim.steps = parse_int_list(lists.steps, "steps");
  o.run.recall_k = parse_int_list(lists.recall_k, "recall-k");
  if (vm.count("no-progress")) o.run.progress = false;
  validate(o);
  return true;
}

std::string describe_options(const TrainOptions& o) {
  std::ostringstream s;
  s << "data-path = " << o.data.data_path << "\ntrain-split = " << o.data.train_split
    << "\ntest-split = " << o.data.test_split << "\ncrop-size = " << o.data.crop_size
    << "\nworkers = " << o.data.workers << "\nprefetch = " << o.data.prefetch
    << "\nmax-test-images = " << o.data.max_test_images << "\nmodel = " << o.model.model
    << "\nembed-dim = " << o.model.embed_dim << "\nuse-pretrained = " << o.model.use_pretrained
    << "\npretrained-path = " << o.model.pretrained_path << "\nsmall-input-stem = " << o.model.small_input_stem
    << "\nfreeze-bn = " << o.model.freeze_bn << "\nbatch-size = " << o.run.batch_size
    << "\nbatch-k = " << o.objective.batch_k << "\nmargin = " << o.objective.margin
    << "\nbeta = " << o.objective.beta << "\nnu = " << o.objective.nu
    << "\nsampler-cutoff = " << o.objective.sampler_cutoff
    << "\nnonzero-loss-cutoff = " << o.objective.nonzero_loss_cutoff << "\noptimizer = " << o.optim.optimizer
    << "\nlr = " << o.optim.lr << "\nlr-beta = " << o.optim.lr_beta << "\nwd = " << o.optim.wd
    << "\nfactor = " << o.optim.factor << "\nsteps = " << join(o.optim.steps)
    << "\nadam-epsilon = " << o.optim.adam_epsilon << "\nmomentum = " << o.optim.momentum
    << "\nepochs = " << o.run.epochs << "\niterations-per-epoch = " << o.run.iterations_per_epoch
    << "\nseed = " << o.run.seed << "\ngpus = " << o.run.gpus << "\ncpu-replicas = " << o.run.cpu_replicas
    << "\nbackend = " << o.run.backend << "\nkvstore = " << o.run.kvstore << "\nthreads = " << o.run.threads
    << "\nlog-interval = " << o.run.log_interval << "\neval-interval = " << o.run.eval_interval
    << "\neval-untrained = " << o.run.eval_untrained << "\nrecall-k = " << join(o.run.recall_k)
    << "\nnmi = " << o.run.nmi << "\nsave-model-prefix = " << o.run.save_model_prefix
    << "\nresume = " << o.run.resume << "\nmetrics-file = " << o.run.metrics_file
    << "\nmax-steps = " << o.run.max_steps << "\n";
  return s.str();
}

}  // namespace dml
