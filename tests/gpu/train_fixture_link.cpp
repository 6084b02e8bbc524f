// The gpu suites run dist_train with tests/train's helpers (run_dist_train, read_metrics, checkpoint
// parameters: tests/train/train_fixture.h). tests/CMakeLists.txt compiles only a folder's own .cpp files
// into its suites, so the helpers' one source file is compiled here, unchanged.
#include "../train/train_fixture.cpp"  // NOLINT(bugprone-suspicious-include)
