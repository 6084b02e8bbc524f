#pragma once
// FOR TESTS ONLY: faults injected into a training run, configured by the environment variable
// DML_FAULT_INJECT, which is read here and nowhere else (tests/faults use it to prove that a fault
// on one rank ends the whole job with that rank's message instead of a hang). Unset or empty: no
// effect. Value: one or more faults separated by ';', each `kind:key=value:...`:
//   sleep:rank=R:step=S:seconds=N   rank R sleeps N seconds before reading step S's batch (outside
//                                   any collective), so the other ranks wait in the next collective
//   read_error:rank=R:step=S        rank R's read of step S's batch throws a dml::Error, as a
//                                   corrupt shard would
//   nan_loss:rank=R:step=S          rank R's loss of step S is NaN (and so are the gradients), as a
//                                   diverging run's would be
// S is the step's 0-based index: the log reports that step as step S+1.
// A malformed value throws dml::Error naming DML_FAULT_INJECT.
#include <cstdint>

namespace dml::fault_injection {

// Called by the trainer once per step, before the train loaders are read.
void before_train_read(int rank, uint64_t step);
// True when rank `rank`'s loss of step `step` is to be made NaN (nan_loss).
bool nan_loss(int rank, uint64_t step);

}  // namespace dml::fault_injection
