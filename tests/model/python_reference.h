#pragma once
// Running the Python reference programs of tests/model/python/ and reading the tensors they
// write. Each program's docstring says what it computes and how it is called.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "test_support.h"

namespace dml::test {

// Runs tests/model/python/<script> with DML_TEST_PYTHON (Debian's python3 with torch and
// torchvision), passing `args` shell-quoted; stdout and stderr come back together.
CommandResult run_reference_script(const std::string& script, const std::vector<std::string>& args);

// A dict name -> tensor written by torch.save(dict(...)) (LibTorch cannot read an OrderedDict).
std::map<std::string, torch::Tensor> load_tensor_dict(const std::string& path);

}  // namespace dml::test
