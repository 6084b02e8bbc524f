// The batch scripts users copy (cluster/slurm_cpu.sbatch, cluster/slurm_train.sbatch) on a real
// Slurm: a one-node cluster of the test's own (slurm_cluster.h), 2 CPUs, srun --mpi=pmix.
// (a) the CPU script runs dist_train with 2 tasks to the end and writes the metrics file;
// (b) the preemption path: SIGUSR1 to the batch shell mid-run -> the script forwards it to the
//     ranks, they checkpoint and exit 0, the script requeues the job, the job starts again, resumes
//     from <prefix>-last.pt by itself, and ends with the losses and parameters of an uninterrupted
//     job (BN-free model, fixed seed, 1 thread: bit-exact on CPU).
// The paths and flags come in through the scripts' DML_* variables (sbatch passes the environment).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "dml/model/embedding_net.h"
#include "dml/train/checkpoint.h"
#include "slurm_cluster.h"
#include "synthetic_shards.h"
#include "test_support.h"

namespace dml::test {
namespace {

// Every wait is bounded, and the longest test's sum stays below ctest's 600 s for this folder: cluster
// start (90 s) + 3 waits of kJobTimeoutS (reference job, training start, requeued job) + stop (60 s).
// In practice the whole folder takes about 40 s.
constexpr int kJobTimeoutS = 120;

const char* kModelFlags =
    "--model small_convnet_nobn --crop-size 14 --embed-dim 8 --batch-size 8 --batch-k 4 --threads 1 --workers 1 "
    "--no-progress --log-interval 1 --max-test-images 16 --recall-k 1,4 --seed 5";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// step -> the loss exactly as written in the metrics file (training records only).
std::map<int64_t, std::string> losses_by_step(const std::string& path) {
  std::map<int64_t, std::string> out;
  std::ifstream in(path);
  std::string line;
  const std::regex record("\"step\": (\\d+), \"loss\": ([^,}]+)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, record)) out[std::stoll(m[1])] = m[2];
  }
  return out;
}

std::map<std::string, torch::Tensor> parameters(const std::string& checkpoint) {
  ModelOptions options;
  options.name = "small_convnet_nobn";
  options.embed_dim = 8;
  EmbeddingNet net = make_embedding_net(options, /*seed=*/999);
  load_inference_model(checkpoint, net);
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : net->named_parameters()) params[p.key()] = p.value().detach().clone();
  return params;
}

class SlurmScripts : public ::testing::Test {
 protected:
  void SetUp() override {
    write_synthetic_shards(dir_.file("data"), 4, 3, 6, 16);
    cluster_ = std::make_unique<SlurmCluster>(dir_.file("cluster"));
  }
  void TearDown() override { cluster_.reset(); }

  // sbatch of the CPU script with 2 tasks on the one node; `prefix` under the test folder.
  std::string submit_cpu(const std::string& name, const std::string& train_flags) {
    const std::string env = "DML_DIR=" + shell_quote(DML_SOURCE_DIR) + " DML_BUILD_DIR=" + shell_quote(DML_BINARY_DIR) +
                            " DML_DATA=" + shell_quote(dir_.file("data")) + " DML_PREFIX=" +
                            shell_quote(dir_.file(name + "/m")) + " DML_EXTRA_FLAGS=" +
                            shell_quote(std::string(kModelFlags) + " " + train_flags) + " ";
    std::string output;
    const std::string id = cluster_->submit(
        env, "--job-name=" + name + " --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=10 --chdir=" + shell_quote(dir_.path()) +
            " --output=" + shell_quote(dir_.file(name + "-%j.out")) + " " +
            shell_quote(source_path("cluster/slurm_cpu.sbatch")),
        &output);
    return id.empty() ? "error: " + output : id;
  }

  std::string job_output(const std::string& name, const std::string& id) {
    return read_file(dir_.file(name + "-" + id + ".out"));
  }

  TempDir dir_;
  std::unique_ptr<SlurmCluster> cluster_;
};

TEST_F(SlurmScripts, CpuScriptRunsTwoTasksToTheEnd) {
  const std::string id = submit_cpu("plain", "--epochs 1 --iterations-per-epoch 6");
  ASSERT_EQ(id.find("error"), std::string::npos) << id;
  const JobInfo info = cluster_->wait_done(id, kJobTimeoutS);
  const std::string out = job_output("plain", id);
  ASSERT_EQ(info.state, "COMPLETED") << info.text << "\n--- job output:\n" << out << "\n--- daemons:\n" << cluster_->logs();
  EXPECT_EQ(info.exit_code, "0:0");
  EXPECT_NE(out.find("[train] ranks 2 (mpi)"), std::string::npos) << out;  // both tasks in one job
  const auto losses = losses_by_step(dir_.file("plain/m.jsonl"));
  ASSERT_EQ(losses.size(), 6u) << out;
  EXPECT_EQ(losses.rbegin()->first, 6);
  EXPECT_TRUE(std::filesystem::exists(dir_.file("plain/m-last.pt")));
}

// Preemption: SIGUSR1 to the batch shell (what --signal=B:USR1@120 sends before the time limit) once
// training has started. The job must requeue itself, start again and resume from <prefix>-last.pt,
// and end exactly where an uninterrupted job of the same script ends.
TEST_F(SlurmScripts, SignalRequeuesTheJobWhichResumesAndEndsLikeAnUninterruptedOne) {
  // 2 epochs of 150 steps: about 25 ms a step here, so the signal lands long before the end.
  const std::string flags = "--epochs 2 --iterations-per-epoch 150";
  const int64_t steps = 300;
  const std::string ref = submit_cpu("reference", flags);
  ASSERT_EQ(ref.find("error"), std::string::npos) << ref;
  const JobInfo ref_info = cluster_->wait_done(ref, kJobTimeoutS);
  ASSERT_EQ(ref_info.state, "COMPLETED") << ref_info.text << "\n--- job output:\n" << job_output("reference", ref);

  const std::string id = submit_cpu("preempted", flags);
  ASSERT_EQ(id.find("error"), std::string::npos) << id;
  // Training has started once the job's output has a training log line.
  bool started = false;
  for (int i = 0; i < 5 * kJobTimeoutS && !started; ++i) {
    started = job_output("preempted", id).find("| loss ") != std::string::npos;
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(started) << cluster_->job(id).text << "\n--- job output:\n" << job_output("preempted", id);
  const CommandResult signal = cluster_->run("timeout 30 scancel --signal=USR1 --batch " + id);
  ASSERT_EQ(signal.exit_code, 0) << signal.output;

  const JobInfo info = cluster_->wait_done(id, kJobTimeoutS, /*min_restarts=*/1);
  const std::string out = job_output("preempted", id);
  ASSERT_EQ(info.state, "COMPLETED") << info.text << "\n--- job output:\n" << out << "\n--- daemons:\n" << cluster_->logs();
  EXPECT_EQ(info.restarts, 1) << info.text;
  EXPECT_EQ(info.exit_code, "0:0");
  // The first run stopped early on the signal; the requeued one resumed by itself.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Steps run: (\\d+),[^\\n]*stopped by signal"))) << out;
  EXPECT_LT(std::stoll(m[1]), steps) << out;
  EXPECT_NE(out.find("[batch] stopped by signal: requeueing job " + id), std::string::npos) << out;
  EXPECT_NE(out.find("resuming from " + dir_.file("preempted/m-last.pt")), std::string::npos) << out;
  EXPECT_NE(out.find("[ckpt] resumed from"), std::string::npos) << out;

  const auto a = losses_by_step(dir_.file("reference/m.jsonl"));
  const auto b = losses_by_step(dir_.file("preempted/m.jsonl"));
  ASSERT_EQ(a.size(), static_cast<size_t>(steps));
  ASSERT_EQ(b.size(), static_cast<size_t>(steps)) << out;
  for (const auto& [step, loss] : a) EXPECT_EQ(b.at(step), loss) << "step " << step;
  const auto pa = parameters(dir_.file("reference/m-last.pt"));
  const auto pb = parameters(dir_.file("preempted/m-last.pt"));
  ASSERT_FALSE(pa.empty());
  for (const auto& [name, tensor] : pa) EXPECT_TRUE(torch::equal(tensor, pb.at(name))) << name;
}

// The GPU script cannot run here (no GPUs); its shell must at least parse, and its preemption block
// must be the CPU script's, which the tests above run.
TEST(SlurmScriptsText, GpuScriptParsesAndSharesThePreemptionBlock) {
  for (const char* script : {"cluster/slurm_train.sbatch", "cluster/slurm_cpu.sbatch", "cluster/env.sh"}) {
    const CommandResult r = run_command("bash -n " + shell_quote(source_path(script)));
    EXPECT_EQ(r.exit_code, 0) << script << ": " << r.output;
  }
  const auto block = [](const std::string& text) {
    const size_t from = text.find("# A trapped signal interrupts");
    return from == std::string::npos ? std::string() : text.substr(from);
  };
  const std::string cpu = block(read_file(source_path("cluster/slurm_cpu.sbatch")));
  ASSERT_FALSE(cpu.empty());
  EXPECT_EQ(block(read_file(source_path("cluster/slurm_train.sbatch"))), cpu);
  const std::string gpu = read_file(source_path("cluster/slurm_train.sbatch"));
  for (const char* line : {"#SBATCH --signal=B:USR1@", "#SBATCH --requeue", "trap '", "srun --mpi=pmix",
                           "resume=(--resume \"$DML_PREFIX-last.pt\")"}) {
    EXPECT_NE(gpu.find(line), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace dml::test
