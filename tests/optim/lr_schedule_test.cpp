#include <gtest/gtest.h>

#include "dml/optim/lr_schedule.h"
#include "dml/util/error.h"

namespace dml {
namespace {

TEST(LrSchedule, ReferenceDefaults) {
  // Reference: base 1e-4, factor 0.5, steps 12,14,16,18; lr(e) = base * factor^#{s in steps: e >= s}.
  const std::vector<int64_t> steps{12, 14, 16, 18};
  const double expected[20] = {1e-4,   1e-4,   1e-4,    1e-4,    1e-4,   1e-4,   1e-4,
                               1e-4,   1e-4,   1e-4,    1e-4,    1e-4,   5e-5,   5e-5,
                               2.5e-5, 2.5e-5, 1.25e-5, 1.25e-5, 6.25e-6, 6.25e-6};
  for (int64_t e = 0; e < 20; ++e) EXPECT_EQ(scheduled_lr(1e-4, 0.5, steps, e), expected[e]) << "epoch " << e;
  // beta's schedule: 0.1 -> 0.05 -> 0.025 -> 0.0125 -> 0.00625
  EXPECT_EQ(scheduled_lr(0.1, 0.5, steps, 11), 0.1);
  EXPECT_EQ(scheduled_lr(0.1, 0.5, steps, 13), 0.05);
  EXPECT_EQ(scheduled_lr(0.1, 0.5, steps, 19), 0.00625);
}

TEST(LrSchedule, UnsortedStepsOtherFactorAndErrors) {
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 0.1, {5, 2}, 3), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 0.1, {5, 2}, 5), 0.01);
  EXPECT_EQ(scheduled_lr(1.0, 0.1, {}, 100), 1.0);
  EXPECT_EQ(scheduled_lr(1.0, 0.1, {0}, 0), 0.1);  // a step at epoch 0 applies from the start
  EXPECT_THROW(scheduled_lr(1.0, 0.0, {1}, 0), Error);
  EXPECT_THROW(scheduled_lr(-1.0, 0.5, {1}, 0), Error);
  EXPECT_THROW(scheduled_lr(1.0, 0.5, {1}, -1), Error);
}

}  // namespace
}  // namespace dml
