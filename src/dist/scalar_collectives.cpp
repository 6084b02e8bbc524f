#include "dml/dist/scalar_collectives.h"

#include "dist/comm_device.h"

namespace dml {

bool any_rank(Communicator& comm, bool flag) {
  torch::Tensor count = torch::full({1}, flag ? 1 : 0, torch::dtype(torch::kInt64).device(dist::comm_device(comm)));
  comm.all_reduce_sum(count);
  return count.cpu().item<int64_t>() > 0;
}

double all_reduce_sum_scalar(Communicator& comm, double value) {
  torch::Tensor sum = torch::full({1}, value, torch::dtype(torch::kFloat64).device(dist::comm_device(comm)));
  comm.all_reduce_sum(sum);
  return sum.cpu().item<double>();
}

}  // namespace dml
