#pragma once
// Start-of-run model consistency: every rank checks it built the same model (parameter and
// buffer names, shapes, dtypes) and fails loudly if not, then takes rank 0's parameters and
// buffers, so all ranks start from identical weights.
#include <string>

#include "dml/dist/communicator.h"
#include "dml/dist/scalar_collectives.h"  // any_rank / all_reduce_sum_scalar, used alongside

namespace torch::nn {
class Module;
}

namespace dml {

// Throws dml::Error "model differs across ranks: <what>: rank d has <entry> where rank 0 has
// <entry> ..." on every rank unless every rank's module has the same parameter and buffer names,
// shapes and dtypes (in registration order, recursively). Costs one all_gather of a 64-bit
// signature hash; the entry-level report is computed only on mismatch. Collective: all ranks call.
void check_same_module(Communicator& comm, const torch::nn::Module& module, const std::string& what);

// Copies root's parameters and buffers (all, recursively; under NoGradGuard) into every rank's
// module, byte-exactly: one broadcast per (device) group of flattened tensors. Checks first with
// check_same_module(comm, module, "broadcast_module"). Tensors must be on the communicator's
// device (host for "mpi"). Collective: all ranks call.
void broadcast_module(Communicator& comm, torch::nn::Module& module, int root = 0);

}  // namespace dml
