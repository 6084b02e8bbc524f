#pragma once
// Private: constructors of the compiled backends. Only communicator_factory.cpp calls these; the
// NCCL one exists only when CMake compiled backends/nccl_communicator.cpp (DML_HAVE_NCCL).
#include <memory>

#include "dml/dist/communicator.h"

namespace dml::dist {

std::unique_ptr<Communicator> make_single_communicator();
std::unique_ptr<Communicator> make_mpi_communicator();
// cuda_device: the device to bind; -1 = local rank % device count.
std::unique_ptr<Communicator> make_nccl_communicator(int cuda_device);

}  // namespace dml::dist
