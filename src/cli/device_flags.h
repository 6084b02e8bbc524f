#pragma once
// Private to cli/: the device flags (--gpus, --gpus-per-rank, --cpu-replicas) and the field-to-flag
// mapping, shared by dist_train's and dist_eval's option builders.
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "dml/train/devices.h"
#include "dml/util/error.h"

namespace dml::cli {

// --gpus "auto" | "" | "cpu" | "0,1", --gpus-per-rank N (> 0 overrides auto), --cpu-replicas N.
DeviceRequest device_request(const std::string& gpus, int gpus_per_rank, int cpu_replicas);
// resolve_replica_devices with flag names in its errors.
std::vector<c10::Device> resolve_devices(const DeviceRequest& request, int local_rank);
// The message of an OptionError with the flag that sets its field in front.
std::string flagged(const OptionError& error);

}  // namespace dml::cli
