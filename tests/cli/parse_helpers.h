#pragma once
// Shared by the cli suites: dist_train's parser on a list of flags.
#include <string>
#include <vector>

#include "dml/cli/options.h"

namespace dml::test {

// parse_options on {"dist_train", args...}; a gtest failure if it printed --help instead.
TrainOptions parse_flags(std::vector<std::string> args);

}  // namespace dml::test
