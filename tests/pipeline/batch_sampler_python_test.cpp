// Cross-check of the rule documented in batch_sampler.h against an independent Python implementation
// (its own Philox4x32-10, Fisher-Yates, repair and wrap-around: tests/pipeline/python/
// batch_sampler_reference.py), for G <= C, G > C and small classes.
#include <gtest/gtest.h>

#include <sstream>

#include "dml/pipeline/batch_sampler.h"
#include "test_support.h"

namespace dml {
namespace {

TEST(GlobalBatchSampler, MatchesIndependentPythonImplementationOfTheDocumentedRule) {
  struct Case {
    int64_t replicas, batch_size, batch_k, num_classes;
    uint64_t seed;
    std::vector<int64_t> sizes;
  };
  std::vector<Case> cases;
  std::vector<int64_t> sizes12;
  for (int64_t c = 0; c < 12; ++c) sizes12.push_back(c == 4 ? 0 : 2 + (c * 5) % 9);  // 2..10 images, one empty
  cases.push_back({1, 20, 4, 12, 123, sizes12});                                   // G = 5 <= C = 11
  cases.push_back({2, 12, 3, 12, (uint64_t{1} << 33) + 7, sizes12});               // G = 8, 64-bit seed
  cases.push_back({5, 15, 3, 12, 9, sizes12});                                     // G = 25 > C: repairs
  cases.push_back({4, 27, 3, 12, 4, sizes12});                                     // G = 36 > C
  dml::test::TempDir dir;
  const std::string input = dir.file("cases.txt");
  std::ostringstream text;
  std::vector<std::vector<int64_t>> expected_labels;
  std::vector<std::pair<size_t, uint64_t>> runs;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<int64_t> labels;
    for (int64_t round = 0; round < 10; ++round) {
      for (int64_t c = 0; c < cases[i].num_classes; ++c) {
        if (round < cases[i].sizes[c]) labels.push_back((c * 7) % cases[i].num_classes);  // class ids permuted
      }
    }
    expected_labels.push_back(labels);
    for (uint64_t step : {0ull, 1ull, 4000000123ull}) {
      text << cases[i].replicas << " " << cases[i].batch_size << " " << cases[i].batch_k << " " << cases[i].seed << " "
           << step;
      for (int64_t l : labels) text << " " << l;
      text << "\n";
      runs.push_back({i, step});
    }
  }
  {
    FILE* f = std::fopen(input.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.str().c_str(), f);
    std::fclose(f);
  }
  const auto result = dml::test::run_python_file("tests/pipeline/python/batch_sampler_reference.py", {input});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::istringstream lines(result.output);
  std::string line;
  for (const auto& [i, step] : runs) {
    ASSERT_TRUE(static_cast<bool>(std::getline(lines, line))) << result.output;
    std::istringstream fields(line);
    std::vector<int64_t> want;
    for (int64_t v; fields >> v;) want.push_back(v);
    const Case& c = cases[i];
    testing::internal::CaptureStderr();  // the small-class warning
    GlobalBatchSampler sampler(expected_labels[i], c.num_classes,
                               BatchPlanOptions{c.replicas, c.batch_size, c.batch_k, c.seed});
    testing::internal::GetCapturedStderr();
    EXPECT_EQ(sampler.global_batch(step), want) << "case " << i << " step " << step;
  }
}

}  // namespace
}  // namespace dml
