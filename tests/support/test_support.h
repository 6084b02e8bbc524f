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

// Runs the Python program tests/<area>/python/<name>.py (`path` is relative to the source
// directory, e.g. "tests/eval/python/nmi_reference.py") with DML_TEST_PYTHON (Debian's
// /usr/bin/python3 with torch, torchvision, numpy, h5py), passing `args` (shell-quoted here).
// The reference programs live in files so that they can be read, run and reviewed on their own;
// each one's docstring says what it computes and what its arguments are. A missing file gives
// exit code 127 and a message naming it.
CommandResult run_python_file(const std::string& path, const std::vector<std::string>& args = {});

// Absolute path of `path` relative to the source directory.
std::string source_path(const std::string& path);

// Single-quotes a string for /bin/sh.
std::string shell_quote(const std::string& s);

// The command prefix that starts `ranks` MPI ranks here, "<env ...> mpiexec <flags> -np <ranks>";
// append the program and its arguments. Open MPI's settings for the tests live in one place,
// DML_TEST_MPIRUN in tests/CMakeLists.txt, which ctest also uses for the MPI suites.
std::string mpirun_command(int ranks);

// Path of a built executable in the build tree (e.g. "dml_prepare").
std::string built_executable(const std::string& name);

// Files (not directories) directly inside `dir`, sorted by name.
std::vector<std::string> list_files(const std::string& dir);

}  // namespace dml::test
