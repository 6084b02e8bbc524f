#include <gtest/gtest.h>

#include <torch/torch.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Tests run one thread per process: ctest may run several at once on a 2-core machine.
  torch::set_num_threads(1);
  return RUN_ALL_TESTS();
}
