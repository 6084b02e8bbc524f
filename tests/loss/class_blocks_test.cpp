// The layout contract between the batch sampler and the loss: class blocks of batch_k rows of one
// label. The loss refuses a batch that breaks it, and a class that recurs in another block (a global
// batch with more classes than the split) gives neither positives nor negatives to that block's anchors.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <set>

#include "dml/loss/distance_weighted_sampling.h"
#include "dml/util/class_blocks.h"
#include "dml/util/error.h"

namespace dml {
namespace {

torch::Tensor unit_rows(int64_t n, int64_t d, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor x = torch::randn({n, d});
  return x / x.norm(2, 1, true);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ClassBlocks, RulesAndLabelCheck) {
  EXPECT_THROW(validate_class_blocks(ClassBlocks{1}), OptionError);
  EXPECT_NO_THROW(validate_class_blocks(ClassBlocks{2}));
  const std::vector<int64_t> good = {3, 3, 3, 1, 1, 1};
  EXPECT_NO_THROW(check_class_block_labels(good.data(), 6, ClassBlocks{3}, "test"));
  const std::vector<int64_t> mixed = {3, 3, 3, 1, 2, 1};
  const std::string e = error_of([&] { check_class_block_labels(mixed.data(), 6, ClassBlocks{3}, "test"); });
  EXPECT_NE(e.find("block 1 (rows 3..5) holds labels 1 and 2 (row 4)"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { check_class_block_labels(good.data(), 5, ClassBlocks{3}, "test"); }).find("not a whole number"),
            std::string::npos);
}

// Labels that are not in blocks of batch_k (here: interleaved classes, or a block size that does not
// match the sampler's) are refused by the sampling step with the block named.
TEST(ClassBlocks, SamplingRefusesLabelsOutOfBlockLayout) {
  SamplingOptions options;
  options.blocks.batch_k = 3;
  const torch::Tensor x = unit_rows(6, 8, 1);
  const torch::Tensor interleaved = torch::tensor(std::vector<int64_t>{0, 1, 0, 1, 0, 1});
  const std::string e = error_of([&] { sample_triplets(x, interleaved, 0, 6, options, 1, 0); });
  EXPECT_NE(e.find("distance-weighted sampling: block 0 (rows 0..2) holds labels 0 and 1"), std::string::npos) << e;
  const torch::Tensor pairs = torch::tensor(std::vector<int64_t>{0, 0, 1, 1, 2, 2});  // blocks of 2, read as 3
  EXPECT_NE(error_of([&] { sample_triplets(x, pairs, 0, 6, options, 1, 0); }).find("holds labels 0 and 1"),
            std::string::npos);
}

// Class 7 occupies blocks 0 and 2 (as when it recurs on another replica). Anchors of block 0 take
// positives only from block 0, and never draw a negative from block 2 (same label), whatever the draw.
TEST(ClassBlocks, RecurringClassRowsAreNeitherPositivesNorNegatives) {
  const int64_t k = 4;
  SamplingOptions options;
  options.blocks.batch_k = k;
  options.nonzero_loss_cutoff = 2.0;  // every other-class row admissible, so only labels exclude rows
  const std::vector<int64_t> block_classes = {7, 3, 7, 5, 9};
  std::vector<int64_t> rows;
  for (int64_t c : block_classes) rows.insert(rows.end(), k, c);
  const torch::Tensor labels = torch::tensor(rows);
  const int64_t n = labels.size(0);
  std::set<int64_t> negatives_seen;
  for (uint64_t step = 0; step < 50; ++step) {
    const torch::Tensor x = unit_rows(n, 16, step);
    const Triplets t = sample_triplets(x, labels, /*anchor_begin=*/0, /*anchor_count=*/k, options, 5, step);
    ASSERT_EQ(t.anchor.numel(), k * (k - 1));
    const auto a = t.anchor.accessor<int64_t, 1>(), p = t.positive.accessor<int64_t, 1>(),
               ng = t.negative.accessor<int64_t, 1>();
    for (int64_t i = 0; i < t.anchor.numel(); ++i) {
      EXPECT_LT(p[i], k);  // block 0 only: rows 8..11 (class 7 again) are not positives
      EXPECT_NE(p[i], a[i]);
      EXPECT_FALSE(ng[i] >= 2 * k && ng[i] < 3 * k) << "negative " << ng[i] << " has the anchor's class";
      EXPECT_NE(rows[ng[i]], 7);
      negatives_seen.insert(ng[i]);
    }
  }
  // The other classes' rows (blocks 1, 3, 4) are all reachable as negatives.
  EXPECT_EQ(negatives_seen.size(), 3u * k);
}

}  // namespace
}  // namespace dml
