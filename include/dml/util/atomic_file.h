#pragma once
// Writing files so that readers never see a half-written one: write to "<path>.tmp.<pid>", fsync,
// rename over <path>, fsync the directory. Every write, fsync, close and rename result is checked:
// on any failure (or exception from the writer) the temporary is removed, <path> is left as it was,
// and a dml::Error names <path>, the system's reason (errno text) and the fix. A process killed
// mid-write leaves <path> as it was and at most a "<path>.tmp.<pid>" file, which no reader opens.
#include <cstddef>
#include <string>
#include <functional>

namespace dml {

// `write` receives the temporary path and must create that file completely.
void write_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

// Why `path` could not be written (its directory missing, not a directory, or refusing a probe file
// that is created and removed), with the fix; empty when it can. For checks before long work.
std::string file_write_problem(const std::string& path);

// A file written with POSIX calls whose every result is checked, for writers that stream bytes
// (e.g. LibTorch's archive writer function). Errors name `label` (the file the user knows).
class CheckedFileWriter {
 public:
  // Creates or truncates `path`; throws dml::Error when that fails.
  CheckedFileWriter(const std::string& path, const std::string& label);
  ~CheckedFileWriter();  // closes the file if finish() did not (after a failure)
  CheckedFileWriter(const CheckedFileWriter&) = delete;
  CheckedFileWriter& operator=(const CheckedFileWriter&) = delete;
  // Appends n bytes and returns n. Never throws: after the first failure it keeps the error and
  // drops the remaining bytes, so that a caller in the middle of a format completes normally;
  // finish() then throws the error.
  size_t write(const void* data, size_t n) noexcept;
  // fsync and close; throws dml::Error for the first failed write, fsync or close.
  void finish();

 private:
  int fd_ = -1;
  int error_ = 0;  // errno of the first failure
  const char* failed_ = nullptr;  // which call failed
  std::string label_;
};

}  // namespace dml
