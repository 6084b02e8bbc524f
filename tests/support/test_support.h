#pragma once
// Shared test helpers: temporary directories, running commands and the cross-check Python.
#include <string>
#include <vector>

namespace dml::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` through /bin/sh, capturing stdout+stderr.
CommandResult run_command(const std::string& command);

// Runs a Python script (its text) with DML_TEST_PYTHON (Debian's /usr/bin/python3 with torch,
// torchvision, numpy, h5py), passing `args` (shell-quoted here). The script is written to a
// temporary file first.
CommandResult run_python(const std::string& script, const std::vector<std::string>& args = {});

// Single-quotes a string for /bin/sh.
std::string shell_quote(const std::string& s);

// Path of a built executable in the build tree (e.g. "dml_prepare").
std::string built_executable(const std::string& name);

// Files (not directories) directly inside `dir`, sorted by name.
std::vector<std::string> list_files(const std::string& dir);

}  // namespace dml::test
