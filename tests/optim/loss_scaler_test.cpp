// Dynamic loss scaling: the scale sequence for a given run of overflows, derived by hand from the
// rule (halve on overflow and restart the count; double after growth_interval finite steps).
#include <gtest/gtest.h>

#include "dml/optim/loss_scaler.h"
#include "dml/util/error.h"

namespace dml {
namespace {

TEST(LossScaler, HalvesOnOverflowAndDoublesAfterAnIntervalOfFiniteSteps) {
  LossScaler scaler({/*init_scale=*/8, /*growth_factor=*/2, /*backoff_factor=*/0.5, /*growth_interval=*/3});
  EXPECT_EQ(scaler.scale(), 8);
  const bool steps[] = {false, false, false, true, false, false, true, false, false, false, false};
  const double expected[] = {8, 8, 16, 8, 8, 8, 4, 4, 4, 8, 8};
  for (size_t i = 0; i < std::size(steps); ++i) {
    scaler.update(steps[i]);
    EXPECT_EQ(scaler.scale(), expected[i]) << "after update " << i;
  }
  EXPECT_EQ(scaler.overflowed_steps(), 2);
}

TEST(LossScaler, DefaultsArePyTorchGradScalers) {
  LossScaler scaler;
  EXPECT_EQ(scaler.scale(), 65536.0);
  for (int i = 0; i < 1999; ++i) scaler.update(false);
  EXPECT_EQ(scaler.scale(), 65536.0);
  scaler.update(false);
  EXPECT_EQ(scaler.scale(), 131072.0);
}

TEST(LossScaler, BadOptionsAreRefused) {
  EXPECT_THROW(LossScaler({0, 2, 0.5, 10}), Error);
  EXPECT_THROW(LossScaler({8, 1, 0.5, 10}), Error);
  EXPECT_THROW(LossScaler({8, 2, 1.5, 10}), Error);
  EXPECT_THROW(LossScaler({8, 2, 0.5, 0}), Error);
}

}  // namespace
}  // namespace dml
