#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "dml/pipeline/batch_sampler.h"
#include "dml/util/error.h"

namespace dml {
namespace {

// Labels of a split with `num_classes` classes, class c holding size_of(c) images, rows interleaved (not sorted
// by class) so that rows and classes are unrelated.
template <typename SizeOf>
std::vector<int64_t> make_labels(int64_t num_classes, SizeOf size_of) {
  std::vector<int64_t> labels;
  int64_t max_size = 0;
  for (int64_t c = 0; c < num_classes; ++c) max_size = std::max<int64_t>(max_size, size_of(c));
  for (int64_t i = 0; i < max_size; ++i) {
    for (int64_t c = num_classes - 1; c >= 0; --c) {
      if (i < size_of(c)) labels.push_back(c);
    }
  }
  return labels;
}

// Upper chi-square quantile at p ~ 1e-6 (z = 4.75), Wilson-Hilferty approximation.
double chi_square_bound(int df) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + 4.75 * std::sqrt(a), 3.0);
}

double chi_square(const std::vector<int64_t>& counts, double expected) {
  double sum = 0;
  for (int64_t c : counts) sum += (c - expected) * (c - expected) / expected;
  return sum;
}

std::string error_of(const std::vector<int64_t>& labels, int64_t num_classes, const BatchPlanOptions& options) {
  try {
    GlobalBatchSampler sampler(labels, num_classes, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Checks the block layout of `rows` for replica chunks of `classes_per_replica` blocks: labels constant within
// each block of k, k distinct rows per block when the class has >= k images, distinct classes within a chunk.
void expect_blocks(const std::vector<int64_t>& rows, const std::vector<int64_t>& labels, int64_t k,
                   int64_t classes_per_replica, const std::vector<int64_t>& class_size) {
  ASSERT_EQ(rows.size() % static_cast<size_t>(k * classes_per_replica), 0u);
  std::set<int64_t> chunk_classes;
  for (size_t q = 0; q * k < rows.size(); ++q) {
    if (q % classes_per_replica == 0) chunk_classes.clear();
    const int64_t c = labels[rows[q * k]];
    std::set<int64_t> block_rows;
    for (int64_t t = 0; t < k; ++t) {
      ASSERT_EQ(labels[rows[q * k + t]], c) << "block " << q << " mixes classes";
      block_rows.insert(rows[q * k + t]);
    }
    if (class_size[c] >= k) {
      EXPECT_EQ(block_rows.size(), static_cast<size_t>(k)) << "block " << q << " repeats an image";
    }
    EXPECT_TRUE(chunk_classes.insert(c).second) << "class " << c << " twice in one replica";
  }
}

std::vector<int64_t> sizes_of(const std::vector<int64_t>& labels, int64_t num_classes) {
  std::vector<int64_t> sizes(num_classes, 0);
  for (int64_t l : labels) sizes[l]++;
  return sizes;
}

TEST(GlobalBatchSampler, DistinctClassesAndDistinctImagesInEveryBlock) {
  const auto labels = make_labels(100, [](int64_t c) { return 5 + (c * 7) % 40; });
  const auto sizes = sizes_of(labels, 100);
  GlobalBatchSampler sampler(labels, 100, BatchPlanOptions{1, 70, 5, 123});
  for (uint64_t step = 0; step < 200; ++step) {
    const auto rows = sampler.global_batch(step);
    ASSERT_EQ(rows.size(), 70u);
    for (int64_t r : rows) ASSERT_TRUE(r >= 0 && r < static_cast<int64_t>(labels.size()));
    expect_blocks(rows, labels, 5, 14, sizes);
    const auto classes = sampler.global_classes(step);
    ASSERT_EQ(classes.size(), 14u);
    for (size_t q = 0; q < classes.size(); ++q) EXPECT_EQ(labels[rows[q * 5]], classes[q]);
    const auto global_labels = sampler.global_labels(step);
    ASSERT_EQ(global_labels.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(global_labels[i], labels[rows[i]]);
  }
}

TEST(GlobalBatchSampler, PureFunctionOfSeedAndStep) {
  const auto labels = make_labels(30, [](int64_t c) { return 8 + c % 5; });
  GlobalBatchSampler a(labels, 30, BatchPlanOptions{1, 20, 4, 7});
  GlobalBatchSampler b(labels, 30, BatchPlanOptions{1, 20, 4, 7});
  GlobalBatchSampler other_seed(labels, 30, BatchPlanOptions{1, 20, 4, 8});
  int differ_seed = 0, differ_step = 0;
  for (uint64_t step = 0; step < 50; ++step) {
    EXPECT_EQ(a.global_batch(step), b.global_batch(step));
    EXPECT_EQ(a.global_batch(step), a.global_batch(step));
    differ_seed += a.global_batch(step) != other_seed.global_batch(step);
    differ_step += a.global_batch(step) != a.global_batch(step + 1);
  }
  EXPECT_EQ(differ_seed, 50);
  EXPECT_EQ(differ_step, 50);
}

TEST(GlobalBatchSampler, TwoReplicasEqualOneReplicaOfDoubleBatch) {
  const auto labels = make_labels(100, [](int64_t c) { return 5 + (c * 13) % 50; });
  GlobalBatchSampler two(labels, 100, BatchPlanOptions{2, 70, 5, 123});
  GlobalBatchSampler one(labels, 100, BatchPlanOptions{1, 140, 5, 123});
  GlobalBatchSampler four(labels, 100, BatchPlanOptions{4, 35, 5, 123});
  for (uint64_t step = 0; step < 300; ++step) {
    const auto global = one.global_batch(step);
    ASSERT_EQ(global.size(), 140u);
    ASSERT_EQ(two.global_batch(step), global) << "step " << step;
    ASSERT_EQ(four.global_batch(step), global) << "step " << step;
    // Replica slices concatenate to the global batch.
    std::vector<int64_t> joined;
    for (int64_t r = 0; r < 2; ++r) {
      const auto part = two.replica_rows(step, r);
      ASSERT_EQ(part.size(), 70u);
      joined.insert(joined.end(), part.begin(), part.end());
    }
    ASSERT_EQ(joined, global);
    // 28 distinct classes across the whole global batch (G <= C).
    const auto classes = two.global_classes(step);
    EXPECT_EQ(std::set<int64_t>(classes.begin(), classes.end()).size(), 28u);
  }
  // The prefix property: fewer replicas draw the first classes of a larger global batch.
  GlobalBatchSampler single(labels, 100, BatchPlanOptions{1, 70, 5, 123});
  for (uint64_t step = 0; step < 20; ++step) {
    const auto big = two.global_classes(step);
    const auto small = single.global_classes(step);
    EXPECT_TRUE(std::equal(small.begin(), small.end(), big.begin()));
  }
  EXPECT_THROW(two.replica_rows(0, 2), Error);
}

// 8 replicas x 14 classes = 112 blocks over 100 classes: classes recur, but never within a replica.
TEST(GlobalBatchSampler, MoreBlocksThanClassesNeverRepeatWithinReplica) {
  // Classes 0..9 have 5..9 images (k <= n < 2k); the rest 10..59 (>= 2k).
  const auto labels = make_labels(100, [](int64_t c) { return c < 10 ? 5 + c % 5 : 10 + c % 50; });
  const auto sizes = sizes_of(labels, 100);
  GlobalBatchSampler sampler(labels, 100, BatchPlanOptions{8, 70, 5, 123});
  int recurrences = 0;
  for (uint64_t step = 0; step < 100; ++step) {
    const auto rows = sampler.global_batch(step);
    ASSERT_EQ(rows.size(), 560u);
    expect_blocks(rows, labels, 5, 14, sizes);
    const auto global_labels = sampler.global_labels(step);
    for (size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(global_labels[i], labels[rows[i]]);
    std::map<int64_t, std::vector<std::set<int64_t>>> blocks_of_class;
    for (size_t q = 0; q < 112; ++q) {
      std::set<int64_t> block(rows.begin() + q * 5, rows.begin() + (q + 1) * 5);
      blocks_of_class[labels[rows[q * 5]]].push_back(block);
    }
    EXPECT_EQ(blocks_of_class.size(), 100u);  // one full permutation plus 12: every class appears
    for (const auto& [c, blocks] : blocks_of_class) {
      EXPECT_LE(blocks.size(), 2u) << "class " << c << " more than ceil(112/100) times";
      if (blocks.size() == 2) {
        ++recurrences;
        std::vector<int64_t> common;
        std::set_intersection(blocks[0].begin(), blocks[0].end(), blocks[1].begin(), blocks[1].end(),
                              std::back_inserter(common));
        if (sizes[c] >= 10) {
          EXPECT_TRUE(common.empty()) << "class " << c << " with " << sizes[c] << " images reused one";
        } else {
          // Wrap-around: the second block starts at permutation position 5, so exactly 10 - n overlap.
          EXPECT_EQ(static_cast<int64_t>(common.size()), 10 - sizes[c]) << "class " << c;
        }
      }
    }
  }
  EXPECT_EQ(recurrences, 100 * 12);
}

// Many permutation boundaries: 10 classes, 4 per replica, 9 replicas = 36 blocks (3.6 permutations).
TEST(GlobalBatchSampler, RepairAcrossSeveralPermutations) {
  const auto labels = make_labels(10, [](int64_t c) { return 40; });
  const auto sizes = sizes_of(labels, 10);
  for (int64_t g : {4, 7, 10}) {
    GlobalBatchSampler sampler(labels, 10, BatchPlanOptions{9, g * 3, 3, 5});
    const int64_t G = 9 * g, max_count = (G + 9) / 10;
    for (uint64_t step = 0; step < 200; ++step) {
      const auto rows = sampler.global_batch(step);
      expect_blocks(rows, labels, 3, g, sizes);
      std::vector<int64_t> counts(10, 0);
      for (int64_t c : sampler.global_classes(step)) counts[c]++;
      for (int64_t c = 0; c < 10; ++c) {
        EXPECT_GE(counts[c], G / 10);
        EXPECT_LE(counts[c], max_count);
      }
      // 40 images, at most 4 occurrences x 3 = 12 rows: all of a class's rows in one step are distinct.
      std::set<int64_t> distinct(rows.begin(), rows.end());
      EXPECT_EQ(distinct.size(), rows.size());
    }
  }
}

TEST(GlobalBatchSampler, ClassAndImageFrequenciesAreUniform) {
  // 20 classes of 12 images, 4 classes x 5 images per step.
  const auto labels = make_labels(20, [](int64_t) { return 12; });
  GlobalBatchSampler sampler(labels, 20, BatchPlanOptions{1, 20, 5, 99});
  const int steps = 4000;
  std::vector<int64_t> class_counts(20, 0), row_counts(labels.size(), 0);
  std::vector<int64_t> position_counts(20, 0);  // class at block 0 only: tests the order too
  for (int step = 0; step < steps; ++step) {
    const auto rows = sampler.global_batch(step);
    for (size_t q = 0; q < 4; ++q) class_counts[labels[rows[q * 5]]]++;
    position_counts[labels[rows[0]]]++;
    for (int64_t r : rows) row_counts[r]++;
  }
  EXPECT_LT(chi_square(class_counts, steps * 4 / 20.0), chi_square_bound(19));
  EXPECT_LT(chi_square(position_counts, steps / 20.0), chi_square_bound(19));
  // Within each class: each image is chosen with probability 5/12 per occurrence of its class.
  for (int64_t c = 0; c < 20; ++c) {
    std::vector<int64_t> counts;
    for (size_t r = 0; r < labels.size(); ++r) {
      if (labels[r] == c) counts.push_back(row_counts[r]);
    }
    ASSERT_EQ(counts.size(), 12u);
    EXPECT_LT(chi_square(counts, class_counts[c] * 5 / 12.0), chi_square_bound(11)) << "class " << c;
  }
}

TEST(GlobalBatchSampler, SmallClassesDrawWithReplacementAndWarnOnce) {
  // Classes 0..4 have 1, 2, 3, 4, 5 images; class 5 has none; classes 6, 7 have 20.
  std::vector<int64_t> sizes = {1, 2, 3, 4, 5, 0, 20, 20};
  const auto labels = make_labels(8, [&](int64_t c) { return sizes[c]; });
  testing::internal::CaptureStderr();
  GlobalBatchSampler sampler(labels, 8, BatchPlanOptions{1, 35, 5, 3});
  const std::string err = testing::internal::GetCapturedStderr();
  size_t warnings = 0;
  for (size_t pos = err.find("warning"); pos != std::string::npos; pos = err.find("warning", pos + 1)) ++warnings;
  EXPECT_EQ(warnings, 1u) << err;
  EXPECT_NE(err.find("4 of 7"), std::string::npos) << err;
  EXPECT_EQ(sampler.num_nonempty_classes(), 7);
  for (uint64_t step = 0; step < 30; ++step) {
    const auto rows = sampler.global_batch(step);
    ASSERT_EQ(rows.size(), 35u);  // all 7 non-empty classes, never the empty one
    std::set<int64_t> classes;
    for (size_t q = 0; q < 7; ++q) {
      const int64_t c = labels[rows[q * 5]];
      classes.insert(c);
      std::map<int64_t, int> uses;
      for (int t = 0; t < 5; ++t) {
        ASSERT_EQ(labels[rows[q * 5 + t]], c);
        uses[rows[q * 5 + t]]++;
      }
      // With replacement, balanced: every image of the class, each floor(5/n) or ceil(5/n) times.
      EXPECT_EQ(static_cast<int64_t>(uses.size()), std::min<int64_t>(sizes[c], 5)) << "class " << c;
      for (const auto& [row, n] : uses) {
        EXPECT_GE(n, 5 / sizes[c]);
        EXPECT_LE(n, (5 + sizes[c] - 1) / sizes[c]);
      }
    }
    EXPECT_EQ(classes.count(5), 0u);
    EXPECT_EQ(classes.size(), 7u);
  }
  // No small class: no warning.
  testing::internal::CaptureStderr();
  GlobalBatchSampler quiet(make_labels(3, [](int64_t) { return 4; }), 3, BatchPlanOptions{1, 4, 2, 3});
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

// Library messages speak the sampler's own terms (batch size, batch_k); the command line adds flag names.
TEST(GlobalBatchSampler, BadOptionsNameTheFieldAndTheFix) {
  const auto labels = make_labels(10, [](int64_t) { return 6; });
  std::string e = error_of(labels, 10, BatchPlanOptions{1, 72, 5, 1});
  EXPECT_NE(e.find("batch size 72 is not a multiple of batch_k 5"), std::string::npos) << e;
  EXPECT_NE(e.find("use e.g. 75"), std::string::npos) << e;
  EXPECT_EQ(e.find("--"), std::string::npos) << e;
  e = error_of(labels, 10, BatchPlanOptions{1, 70, 5, 1});  // 14 classes per replica > 10
  EXPECT_NE(e.find("14 classes per replica"), std::string::npos) << e;
  EXPECT_NE(e.find("only 10 classes"), std::string::npos) << e;
  e = error_of(labels, 10, BatchPlanOptions{1, 10, 0, 1});
  EXPECT_NE(e.find("batch_k is 0"), std::string::npos) << e;
  e = error_of(labels, 10, BatchPlanOptions{1, 0, 5, 1});
  EXPECT_NE(e.find("batch size is 0"), std::string::npos) << e;
  e = error_of(labels, 10, BatchPlanOptions{0, 10, 5, 1});
  EXPECT_NE(e.find("replicas"), std::string::npos) << e;
  e = error_of({}, 10, BatchPlanOptions{1, 10, 5, 1});
  EXPECT_NE(e.find("no class"), std::string::npos) << e;
  e = error_of({0, 1, 10}, 10, BatchPlanOptions{1, 10, 5, 1});
  EXPECT_NE(e.find("label of row 2 is 10"), std::string::npos) << e;
  // Empty classes do not count: 10 labelled classes in a 50-class space still allow 10 per replica only.
  e = error_of(labels, 50, BatchPlanOptions{1, 55, 5, 1});
  EXPECT_NE(e.find("only 10 classes with images"), std::string::npos) << e;
  EXPECT_EQ(error_of(labels, 50, BatchPlanOptions{1, 50, 5, 1}), "");
}

}  // namespace
}  // namespace dml
