#include "test_support.h"

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace dml::test {
namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/dml_test_XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> chunk{};
  size_t n = 0;
  while ((n = fread(chunk.data(), 1, chunk.size(), pipe)) > 0) result.output.append(chunk.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string source_path(const std::string& path) { return std::string(DML_SOURCE_DIR) + "/" + path; }

CommandResult run_python_file(const std::string& path, const std::vector<std::string>& args) {
  const std::string full = source_path(path);
  if (!fs::is_regular_file(full)) {
    CommandResult missing;
    missing.exit_code = 127;
    missing.output = "run_python_file: no such file " + full;
    return missing;
  }
  std::string command = std::string(DML_TEST_PYTHON) + " " + shell_quote(full);
  for (const auto& a : args) command += " " + shell_quote(a);
  return run_command(command);
}

std::string mpirun_command(int ranks) { return std::string(DML_TEST_MPIRUN) + " -np " + std::to_string(ranks); }

std::string built_executable(const std::string& name) { return std::string(DML_BINARY_DIR) + "/" + name; }

std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace dml::test
