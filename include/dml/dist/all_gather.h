#pragma once
// Differentiable all-gather: the global batch of embeddings with gradients that flow home.
#include "dml/dist/communicator.h"

namespace dml {

// x: [n, ...] on every rank (same n, dtype float), on the communicator's device.
// Returns [world*n, ...] in rank-major order (rows r*n..(r+1)*n-1 are rank r's x), part of the
// autograd graph: its backward reduce-scatters (SUM) the incoming gradient, so the gradient of rank
// r's rows, summed over every rank's loss, arrives in rank r's x.grad.
// Lock-step: every rank must call it, and every rank must run backward through the result in the
// same order (a rank whose loss does not use it still has to, e.g. by adding 0 * result.sum()).
// `comm` must outlive the backward pass.
at::Tensor all_gather_with_grad(Communicator& comm, const at::Tensor& x);

}  // namespace dml
