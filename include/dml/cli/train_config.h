#pragma once
// The one place where parsed command-line options become the components' option structs, and where
// a component's complaint about an option value is turned into a message that names the flag.
#include <exception>
#include <string>

#include "dml/cli/options.h"

namespace dml {

// Derives every component field from `options` (the class-block layout of sampler and loss from one
// --batch-k, the crop of training and evaluation from one --crop-size, beta's optimiser from --lr-beta
// and --momentum, ...), checks every rule that needs no data by calling each component's own
// validation, and resolves this rank's replica devices for the launcher's `local_rank`.
// Throws dml::Error whose message starts with the flag that set the offending value.
TrainConfig make_train_config(const TrainOptions& options, int local_rank);

// The same without resolving devices (config.devices stays empty): parse_options calls it so that a
// bad value fails at parse time, before any launcher or data work.
TrainConfig make_train_config_without_devices(const TrainOptions& options);

// The message of `error` for the user: an OptionError's field, when a flag sets it, becomes that flag
// ("--batch-size: batch size 10 is not a multiple of batch_k 4; ..."); other errors keep their text.
std::string describe_error(const std::exception& error);

}  // namespace dml
