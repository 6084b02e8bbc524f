#pragma once
// Small collectives on host scalars (stop signals, global counts). Collective: all ranks call.
#include "dml/dist/communicator.h"

namespace dml {

// True on every rank when `flag` is true on at least one rank.
bool any_rank(Communicator& comm, bool flag);

// Sum over ranks of `value` (float64), the same on every rank.
double all_reduce_sum_scalar(Communicator& comm, double value);

}  // namespace dml
