#include "parse_helpers.h"

#include <gtest/gtest.h>

namespace dml::test {

TrainOptions parse_flags(std::vector<std::string> args) {
  args.insert(args.begin(), "dist_train");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  TrainOptions o;
  EXPECT_TRUE(parse_options(static_cast<int>(argv.size()), argv.data(), o));
  return o;
}

}  // namespace dml::test
