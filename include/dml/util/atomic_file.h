#pragma once
// Writing files so that readers never see a half-written one: write to "<path>.tmp.<pid>", fsync,
// rename over <path>, fsync the directory. On any exception the temporary is removed and rethrown.
#include <functional>
#include <string>

namespace dml {

// `write` receives the temporary path and must create that file completely.
void write_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

}  // namespace dml
