// dml_bench_train: training-speed benchmark of dist_train's own Trainer. Takes every dist_train flag
// (parsed by the same dml::parse_options / make_train_config) plus the --bench-* flags below, runs one
// measurement, prints a table (rank 0) and writes it as JSON (--bench-json). Measures only; asserts
// nothing. launch/bench.sh runs the whole suite and compares the results.
//
//   dml_bench_train [--bench-mode train|loader|allreduce|project] [--bench-steps N] [--bench-warmup W]
//                   [--bench-json FILE] [--bench-label TEXT] [other --bench-* flags] [dist_train flags...]
//   mpirun -np 2 ... dml_bench_train --bench-mode allreduce ...
//
// Modes:
//  train      dml::Trainer exactly as dist_train builds it, with --time-phases. Warm-up is excluded by
//             difference: in one process, trainer P runs --bench-process-warmup steps (oneDNN primitives,
//             allocator, thread pool: process warm-up; discarded), trainer A runs W steps, trainer B runs
//             W + N steps; both A and B end with the same evaluation (--max-test-images) and checkpoint.
//             images/s = N x global batch / (wall(B.run) - wall(A.run)); ms per phase = (B - A) / N, i.e.
//             steps W+1 .. W+N of a fresh trainer in a warm process. "other" = wall - phases (zero_grad,
//             the loop's bookkeeping, and the noise of the two final evaluations/checkpoints).
//  loader     TrainLoader over the train shards (--data-path, --crop-size, --batch-size, --batch-k,
//             --preload-max-mb) for each worker count of --bench-workers; times next() with nothing else
//             running: the producers' throughput.
//  allreduce  Communicator::start_all_reduce_sum + wait (the gradient buckets' path) and all_reduce_sum
//             (with the shape agreement) of float32 buffers, sizes --bench-min-bytes .. --bench-max-bytes
//             (x4); busbw = algbw x 2(n-1)/n. Run under mpirun with --backend mpi.
//  project    A scaling projection for --bench-gpus (default 8,64,512) GPUs at --batch-size per GPU: the
//             bucket layout of the model's gradients (GradientBuckets itself), the gather, sampling + loss
//             timed here at each global batch, and assumed NCCL ring bus bandwidths (bench/bench_project.cpp).
//
// The modes live in src/app/bench/ (one file each, shared pieces in bench_common.h); this file holds
// the --bench-* flags and main.
#include <torch/torch.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "app/bench/bench_common.h"
#include "cli/flag_format.h"
#include "dml/cli/options.h"
#include "dml/cli/train_config.h"
#include "dml/dist/communicator.h"
#include "dml/dist/launch_environment.h"
#include "dml/train/devices.h"
#include "dml/util/error.h"
#include "dml/util/host_allocator.h"
#include "dml/util/log.h"

namespace {

using dml::bench::BenchOptions;

// Splits argv into the --bench-* flags (each with its value, "--bench-x v" or "--bench-x=v") and the rest.
void split_args(int argc, char** argv, std::vector<std::string>& bench, std::vector<std::string>& rest) {
  rest.push_back(argv[0]);
  bench.push_back(argv[0]);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--bench-", 0) == 0) {
      bench.push_back(a);
      if (a.find('=') == std::string::npos && i + 1 < argc) bench.push_back(argv[++i]);
    } else {
      rest.push_back(a);
    }
  }
}

std::vector<const char*> c_args(const std::vector<std::string>& v) {
  std::vector<const char*> out;
  for (const auto& s : v) out.push_back(s.c_str());
  return out;
}

boost::program_options::options_description bench_flags(BenchOptions& o) {
  namespace po = boost::program_options;
  po::options_description f("dml_bench_train flags (all other flags are dist_train's; see dist_train --help)");
  f.add_options()
      ("bench-mode", dml::cli::value(&o.mode), "train | loader | allreduce | project")
      ("bench-steps", dml::cli::value(&o.steps), "train: timed steps N")
      ("bench-warmup", dml::cli::value(&o.warmup), "train: untimed steps W of each trainer (subtracted)")
      ("bench-process-warmup", dml::cli::value(&o.process_warmup), "train: steps of the discarded first trainer (0 = none)")
      ("bench-json", dml::cli::value(&o.json), "write the result to this JSON file (rank 0)")
      ("bench-label", dml::cli::value(&o.label), "name of this configuration in the table and the JSON")
      ("bench-tmp", dml::cli::value(&o.tmp_dir), "directory for the trainers' checkpoints (default /dev/shm)")
      ("bench-workers", dml::cli::value(&o.workers), "loader: worker counts, comma-separated")
      ("bench-min-seconds", dml::cli::value(&o.min_seconds), "loader: seconds timed per worker count")
      ("bench-max-batches", dml::cli::value(&o.max_batches), "loader: at most this many timed batches")
      ("bench-min-bytes", dml::cli::value(&o.min_bytes), "allreduce: smallest buffer")
      ("bench-max-bytes", dml::cli::value(&o.max_bytes), "allreduce: largest buffer")
      ("bench-size-factor", dml::cli::value(&o.size_factor), "allreduce: ratio of consecutive sizes")
      ("bench-gpus", dml::cli::value(&o.gpus), "project: GPU counts")
      ("bench-gpus-per-node", dml::cli::value(&o.gpus_per_node), "project: GPUs per node")
      ("bench-nvlink-busbw", dml::cli::value(&o.nvlink_busbw_gbs), "project: NCCL ring busbw within a node, GB/s")
      ("bench-ib-busbw", dml::cli::value(&o.ib_busbw_gbs), "project: NCCL ring busbw across nodes, GB/s")
      ("bench-latency-intra-us", dml::cli::value(&o.latency_intra_us), "project: latency per collective in a node")
      ("bench-latency-inter-us", dml::cli::value(&o.latency_inter_us), "project: latency per collective across nodes")
      ("bench-forward-ms-per-image", dml::cli::value(&o.forward_ms_per_image), "project: measured forward ms per image")
      ("bench-backward-ms-per-image", dml::cli::value(&o.backward_ms_per_image), "project: measured backward ms per image")
      ("bench-optimizer-ms", dml::cli::value(&o.optimizer_ms), "project: measured optimiser ms per step")
      ("bench-gpu-images-per-sec", dml::cli::value(&o.gpu_images_per_sec), "project: assumed training images/s of one GPU")
      ("bench-sampling-iters", dml::cli::value(&o.sampling_iters), "project: timed sampling + loss calls per size");
  return f;
}

bool parse_bench(const std::vector<std::string>& args, BenchOptions& o) {
  namespace po = boost::program_options;
  const auto flags = bench_flags(o);
  std::vector<const char*> argv = c_args(args);
  po::variables_map vm;
  try {
    po::store(dml::cli::last_occurrences(
                  po::command_line_parser(static_cast<int>(argv.size()), argv.data()).options(flags).run()),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw dml::Error(dml::str(e.what(), "; see dml_bench_train --help"));
  }
  dml::check(o.mode == "train" || o.mode == "loader" || o.mode == "allreduce" || o.mode == "project",
             "--bench-mode must be train, loader, allreduce or project, got '", o.mode, "'");
  dml::check(o.steps >= 1 && o.warmup >= 1 && o.process_warmup >= 0,
             "--bench-steps and --bench-warmup must be >= 1, --bench-process-warmup >= 0");
  dml::check(o.min_bytes >= 4 && o.max_bytes >= o.min_bytes && o.size_factor >= 2, "bad --bench-*-bytes / factor");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  dml::keep_host_memory();  // as dist_train does
  const dml::LaunchEnvironment launch = dml::read_launch_environment();
  dml::log::set_rank(launch.rank, /*world_size=*/2);
  BenchOptions bench;
  dml::TrainOptions options;
  dml::TrainConfig config;
  std::vector<std::string> bench_args, rest;
  split_args(argc, argv, bench_args, rest);
  for (const auto& a : rest) {
    if (a == "--help" || a == "-h") {
      std::cout << "dml_bench_train: benchmark of dist_train's trainer (see the comment at the top of "
                   "src/app/dml_bench_train.cpp)\n\n"
                << bench_flags(bench) << "\n";
      return 0;
    }
  }
  try {
    parse_bench(bench_args, bench);
    const std::vector<const char*> args = c_args(rest);
    if (!dml::parse_options(static_cast<int>(args.size()), args.data(), options)) return 0;
    config = dml::make_train_config(options, launch.local_rank);
    config.run.options_text = dml::describe_options(options);
  } catch (const std::exception& e) {
    dml::log::error("cli", dml::describe_error(e));
    return 2;
  }
  std::unique_ptr<dml::Communicator> comm;
  try {
    const dml::Backend backend = bench.mode == "project" ? dml::Backend::kSingle : dml::parse_backend(options.backend);
    const c10::Device& first = config.devices.front();
    comm = dml::make_communicator(backend, first.is_cuda() ? first.index() : -1);
    comm->set_collective_timeout(options.collective_timeout);
    dml::log::set_rank(comm->rank(), comm->world_size());
    torch::set_num_threads(dml::resolve_thread_count(options.threads, comm->local_size()));
    int rc = 0;
    if (bench.mode == "train") rc = dml::bench::run_train(bench, options, config, *comm);
    else if (bench.mode == "loader") rc = comm->rank() == 0 ? dml::bench::run_loader(bench, options, config) : 0;
    else if (bench.mode == "allreduce") rc = dml::bench::run_allreduce(bench, *comm);
    else rc = dml::bench::run_project(bench, options, config, *comm);
    comm->barrier();
    return rc;
  } catch (const std::exception& e) {
    dml::log::error("bench", dml::describe_error(e));
    if (comm && comm->world_size() > 1) comm->abort(1);
    return 1;
  }
}
