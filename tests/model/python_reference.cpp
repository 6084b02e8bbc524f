#include "python_reference.h"

#include <fstream>
#include <iterator>

namespace dml::test {

CommandResult run_reference_script(const std::string& script, const std::vector<std::string>& args) {
  const std::string path = std::string(DML_SOURCE_DIR) + "/tests/model/python/" + script;
  std::string command = shell_quote(DML_TEST_PYTHON) + " " + shell_quote(path);
  for (const auto& a : args) command += " " + shell_quote(a);
  return run_command(command);
}

std::map<std::string, torch::Tensor> load_tensor_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : torch::pickle_load(bytes).toGenericDict()) out[e.key().toStringRef()] = e.value().toTensor();
  return out;
}

}  // namespace dml::test
