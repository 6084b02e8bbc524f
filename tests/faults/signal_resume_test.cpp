// Preemption signals end to end: SIGTERM, or SIGUSR1 (Slurm's pre-timeout signal), sent to one rank
// of two stops every rank at the same step boundary; rank 0 writes <prefix>-last.pt and the job exits
// 0. Resuming from it to the end must give what an uninterrupted run gives, exactly (CPU is
// bit-exact): the loss of every step, every evaluation, and every parameter and BatchNorm buffer of
// -last.pt and -best.pt.
//
// The signal lands at a known moment: the rank that is NOT signalled sleeps before reading the
// batch of a chosen step S (DML_FAULT_INJECT), and the signal is sent once that rank's "sleeps" line
// is out. The signalled rank is then waiting in step S's collectives, the ranks agree on the stop
// at the next step boundary, so the stop is at step S + 1, and the run cannot end before the signal.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "dml/model/embedding_net.h"
#include "dml/train/checkpoint.h"
#include "synthetic_shards.h"
#include "test_support.h"

namespace dml::test {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kEpochs = 3, kPerEpoch = 8, kTotalSteps = kEpochs * kPerEpoch;
constexpr int kRunTimeoutS = 120;    // one dist_train run takes seconds
constexpr int kSleepSeconds = 3;     // how long the unsignalled rank sleeps: the window for the signal
constexpr int64_t kEmbedDim = 16;

// One line of the metrics file: a training record (has "loss") or an evaluation (`model` is its
// label, "untrained" or "trained"), with its numeric fields.
struct Record {
  std::string model;  // empty for training records
  std::map<std::string, double> fields;
  int64_t step() const { return static_cast<int64_t>(fields.at("step")); }
};

// Every record of the file, in the order written (a resumed run appends to it).
std::vector<Record> read_records(const std::string& path) {
  std::vector<Record> records;
  std::ifstream in(path);
  std::string line;
  const std::regex field("\"([^\"]+)\":\\s*(-?[0-9.eE+-]+)");
  const std::regex model("\"model\":\\s*\"([^\"]*)\"");
  while (std::getline(in, line)) {
    Record r;
    for (std::sregex_iterator it(line.begin(), line.end(), field), end; it != end; ++it) {
      r.fields[(*it)[1]] = std::stod((*it)[2]);
    }
    std::smatch m;
    if (std::regex_search(line, m, model)) r.model = m[1];
    if (r.model.empty() && !r.fields.count("loss")) continue;
    records.push_back(r);
  }
  return records;
}

// Training records by step, and evaluations by (label, step), each with every time it was logged.
struct Logged {
  std::map<int64_t, std::vector<double>> losses;
  std::map<std::pair<std::string, int64_t>, std::vector<std::map<std::string, double>>> evals;
};
void add(Logged& logged, const std::vector<Record>& records, size_t from = 0) {
  for (size_t i = from; i < records.size(); ++i) {
    const Record& r = records[i];
    if (r.model.empty()) {
      logged.losses[r.step()].push_back(r.fields.at("loss"));
    } else {
      logged.evals[{r.model, r.step()}].push_back(r.fields);
    }
  }
}

// The model of a dml checkpoint (-last.pt or -best.pt): parameters and buffers by name.
struct ModelState {
  std::map<std::string, torch::Tensor> parameters, buffers;
};
ModelState model_state(const std::string& path) {
  ModelOptions options;
  options.name = "small_convnet";
  options.embed_dim = kEmbedDim;
  EmbeddingNet net = make_embedding_net(options, /*seed=*/999);
  load_inference_model(path, net);
  ModelState state;
  for (const auto& p : net->named_parameters()) state.parameters[p.key()] = p.value().detach().clone();
  for (const auto& b : net->named_buffers()) state.buffers[b.key()] = b.value().detach().clone();
  return state;
}

void expect_same_tensors(const std::map<std::string, torch::Tensor>& expected,
                         const std::map<std::string, torch::Tensor>& actual, const std::string& what) {
  ASSERT_FALSE(expected.empty()) << what;
  for (const auto& [name, tensor] : expected) {
    const auto it = actual.find(name);
    ASSERT_NE(it, actual.end()) << what << ": " << name << " missing";
    EXPECT_TRUE(torch::equal(tensor, it->second)) << what << ": " << name << " differs";
  }
  EXPECT_EQ(actual.size(), expected.size()) << what;
}

void expect_same_model(const std::string& expected_path, const std::string& actual_path) {
  const ModelState expected = model_state(expected_path), actual = model_state(actual_path);
  // small_convnet has BatchNorm: the buffers compared must include its running statistics.
  for (const char* suffix : {".running_mean", ".running_var", ".num_batches_tracked"}) {
    EXPECT_TRUE(std::any_of(expected.buffers.begin(), expected.buffers.end(), [&](const auto& b) {
      return b.first.size() > std::strlen(suffix) && b.first.compare(b.first.size() - std::strlen(suffix),
                                                                     std::string::npos, suffix) == 0;
    })) << "no BatchNorm buffer *" << suffix << " in " << expected_path;
  }
  expect_same_tensors(expected.parameters, actual.parameters, actual_path + " parameters");
  expect_same_tensors(expected.buffers, actual.buffers, actual_path + " buffers");
}

// The N of every line "[train] stop requested: checkpointing at step N", whole lines only.
std::vector<int64_t> stop_steps(const std::string& output) {
  std::vector<int64_t> steps;
  const std::regex stop(R"(\[train\] stop requested: checkpointing at step ([0-9]+))");
  std::istringstream in(output);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, stop)) steps.push_back(std::stoll(m[1]));
  }
  return steps;
}

class SignalResume : public ::testing::Test {
 protected:
  // The data, and the uninterrupted reference run every test compares with.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), 8, 4, 10, 16);
    reference_ = new CommandResult(run_two_ranks(args(reference_prefix())));
  }
  static void TearDownTestSuite() {
    delete reference_;
    delete dir_;
  }

  static std::string reference_prefix() { return dir_->file("reference"); }
  static std::vector<std::string> args(const std::string& prefix) {
    return {"--data-path", dir_->file("data"), "--model", "small_convnet", "--crop-size", "14", "--embed-dim",
            std::to_string(kEmbedDim), "--batch-k", "4", "--batch-size", "16", "--iterations-per-epoch",
            std::to_string(kPerEpoch), "--epochs", std::to_string(kEpochs), "--log-interval", "1", "--threads", "1",
            "--workers", "2", "--lr", "1e-3", "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"};
  }
  static std::string dist_train_args(const std::vector<std::string>& a) {
    std::string command = shell_quote(built_executable("dist_train"));
    for (const auto& x : a) command += " " + shell_quote(x);
    return command;
  }
  static CommandResult run_two_ranks(const std::vector<std::string>& a) {
    return run_command("timeout " + std::to_string(kRunTimeoutS) + " " + mpirun_command(2) +
                       " -x DML_NO_PROGRESS=1 " + dist_train_args(a));
  }

  // Runs `prefix` on 2 ranks, each started as `sh -c 'echo $$ > pid<rank>; exec dist_train ...'` so
  // that the pid files name the ranks' processes; the rank other than `signalled_rank` sleeps before
  // step `sleep_step`, and once it says so, `signal` goes to `signalled_rank`. The output is the
  // job's, then "@@ signalled" when the signal was sent, then "@@ exit=<mpirun's exit code>".
  static CommandResult run_signalled(const std::string& prefix, const std::string& signal, int signalled_rank,
                                     int64_t sleep_step) {
    const int sleeper = 1 - signalled_rank;
    const std::string pid = prefix + ".pid", log = prefix + ".log";
    const std::string inner =
        "echo $$ > " + shell_quote(pid) + "$OMPI_COMM_WORLD_RANK; exec " + dist_train_args(args(prefix));
    const std::string sleep = "sleep:rank=" + std::to_string(sleeper) + ":step=" + std::to_string(sleep_step) +
                              ":seconds=" + std::to_string(kSleepSeconds);
    std::string script = mpirun_command(2) + " -x DML_NO_PROGRESS=1 -x DML_FAULT_INJECT=" + sleep + " sh -c " +
                         shell_quote(inner) + " > " + shell_quote(log) + " 2>&1 & pid=$!\n";
    script += "for i in $(seq 1 600); do if grep -q 'DML_FAULT_INJECT: rank " + std::to_string(sleeper) +
              " sleeps' " + shell_quote(log) + "; then kill -" + signal + " $(cat " +
              shell_quote(pid + std::to_string(signalled_rank)) +
              ") && echo '@@ signalled'; break; fi; sleep 0.05; done\n";
    script += "wait $pid; echo \"@@ exit=$?\"\n";
    CommandResult r = run_command("timeout " + std::to_string(kRunTimeoutS) + " bash -c " + shell_quote(script));
    std::ifstream in(log);
    r.output = std::string(std::istreambuf_iterator<char>(in), {}) + "\n" + r.output;
    return r;
  }

  // The whole scenario: the signalled run, the resume to the end, and the comparison with the
  // reference. `sleep_step` (0-based) places the stop at step sleep_step + 1.
  static void interrupt_resume_and_compare(const std::string& signal, int signalled_rank, int64_t sleep_step) {
    ASSERT_EQ(reference_->exit_code, 0) << "the uninterrupted reference run failed\n" << reference_->output;
    const std::vector<Record> reference = read_records(reference_prefix() + ".jsonl");
    Logged expected;
    add(expected, reference);
    ASSERT_EQ(expected.losses.size(), static_cast<size_t>(kTotalSteps)) << reference_->output;
    ASSERT_EQ(expected.losses.begin()->first, 1);
    ASSERT_EQ(expected.losses.rbegin()->first, kTotalSteps);
    ASSERT_FALSE(expected.evals.empty());

    const std::string prefix = dir_->file(signal + "-rank" + std::to_string(signalled_rank));
    const CommandResult stopped = run_signalled(prefix, signal, signalled_rank, sleep_step);
    ASSERT_NE(stopped.output.find("@@ signalled\n"), std::string::npos) << "the signal was never sent\n"
                                                                        << stopped.output;
    ASSERT_NE(stopped.output.find("@@ exit=0\n"), std::string::npos) << stopped.output;
    EXPECT_EQ(stopped.output.find("] error"), std::string::npos) << stopped.output;
    const std::vector<int64_t> stops = stop_steps(stopped.output);
    ASSERT_EQ(stops.size(), 1u) << "one stop line expected\n" << stopped.output;
    const int64_t stop = stops.front();
    ASSERT_GT(stop, 0) << stopped.output;
    ASSERT_LT(stop, kTotalSteps) << stopped.output;
    EXPECT_EQ(stop, sleep_step + 1) << "the stop is agreed at the first boundary after the signal\n" << stopped.output;
    ASSERT_TRUE(fs::exists(prefix + "-last.pt")) << stopped.output;
    const std::vector<Record> first = read_records(prefix + ".jsonl");

    auto resume = args(prefix);
    resume.insert(resume.end(), {"--resume", prefix + "-last.pt"});
    const CommandResult resumed = run_two_ranks(resume);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    std::smatch m;
    const std::regex resumed_line(R"(\] resumed from [^\n]* at epoch ([0-9]+), step ([0-9]+)\n)");
    ASSERT_TRUE(std::regex_search(resumed.output, m, resumed_line)) << resumed.output;
    EXPECT_EQ(std::stoll(m[1]), stop / kPerEpoch) << resumed.output;
    EXPECT_EQ(std::stoll(m[2]), stop) << resumed.output;

    // Training losses: the interrupted run logged steps 1..stop, the resumed one stop+1..end, each
    // once, and every one equals the reference's.
    const std::vector<Record> all = read_records(prefix + ".jsonl");
    Logged before, after, both;
    add(before, first);
    add(after, all, first.size());
    add(both, all);
    ASSERT_FALSE(before.losses.empty());
    EXPECT_EQ(before.losses.rbegin()->first, stop);
    ASSERT_FALSE(after.losses.empty());
    EXPECT_EQ(after.losses.begin()->first, stop + 1);
    for (int64_t step = 1; step <= kTotalSteps; ++step) {
      const auto it = both.losses.find(step);
      ASSERT_NE(it, both.losses.end()) << "step " << step << " was never logged";
      EXPECT_EQ(it->second.size(), 1u) << "step " << step << " logged more than once";
      for (double loss : it->second) EXPECT_EQ(loss, expected.losses.at(step).front()) << "step " << step;
    }
    EXPECT_EQ(both.losses.size(), static_cast<size_t>(kTotalSteps));

    // Evaluations: the same ones (label, step), each once, with the same metrics.
    ASSERT_EQ(both.evals.size(), expected.evals.size());
    for (const auto& [key, values] : expected.evals) {
      const auto it = both.evals.find(key);
      ASSERT_NE(it, both.evals.end()) << key.first << " evaluation at step " << key.second << " missing";
      EXPECT_EQ(it->second.size(), 1u) << key.first << " evaluation at step " << key.second << " logged more than once";
      for (const auto& [name, value] : values.front()) {
        EXPECT_EQ(it->second.front().at(name), value) << name << " of the evaluation at step " << key.second;
      }
    }
    const auto& final_eval = both.evals.at({"trained", kTotalSteps}).front();
    EXPECT_EQ(final_eval.at("map@r"), expected.evals.at({"trained", kTotalSteps}).front().at("map@r"));

    expect_same_model(reference_prefix() + "-last.pt", prefix + "-last.pt");
    ASSERT_TRUE(fs::exists(reference_prefix() + "-best.pt"));
    ASSERT_TRUE(fs::exists(prefix + "-best.pt"));
    expect_same_model(reference_prefix() + "-best.pt", prefix + "-best.pt");
  }

  static TempDir* dir_;
  static CommandResult* reference_;
};
TempDir* SignalResume::dir_ = nullptr;
CommandResult* SignalResume::reference_ = nullptr;

// The stops fall mid-epoch (5, 11, 19) and at an epoch's end (8, right after its evaluation and
// checkpoint).
TEST_F(SignalResume, SigtermToRank0StopsAllRanksAndResumesBitExactly) {
  interrupt_resume_and_compare("TERM", /*signalled_rank=*/0, /*sleep_step=*/4);
}

TEST_F(SignalResume, SigtermToRank1StopsAllRanksAndResumesBitExactly) {
  interrupt_resume_and_compare("TERM", /*signalled_rank=*/1, /*sleep_step=*/10);
}

TEST_F(SignalResume, Sigusr1ToRank0StopsAllRanksAndResumesBitExactly) {
  interrupt_resume_and_compare("USR1", /*signalled_rank=*/0, /*sleep_step=*/7);
}

TEST_F(SignalResume, Sigusr1ToRank1StopsAllRanksAndResumesBitExactly) {
  interrupt_resume_and_compare("USR1", /*signalled_rank=*/1, /*sleep_step=*/18);
}

}  // namespace
}  // namespace dml::test
