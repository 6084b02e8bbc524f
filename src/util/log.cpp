#include "dml/util/log.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace dml::log {
namespace {
int g_rank = 0;
int g_world_size = 1;
std::mutex g_mutex;

void emit(const char* level, const std::string& tag, const std::string& message, bool with_rank) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (with_rank && g_world_size > 1) {
    std::fprintf(stderr, "[%s] %s(rank %d): %s\n", tag.c_str(), level, g_rank, message.c_str());
  } else {
    std::fprintf(stderr, "[%s] %s%s\n", tag.c_str(), level, message.c_str());
  }
  std::fflush(stderr);
}
}  // namespace

void set_rank(int rank, int world_size) {
  g_rank = rank;
  g_world_size = world_size;
}

int rank() { return g_rank; }

void info(const std::string& tag, const std::string& message) {
  if (g_rank == 0) emit("", tag, message, false);
}

void warn(const std::string& tag, const std::string& message) { emit("warning ", tag, message, true); }

void error(const std::string& tag, const std::string& message) { emit("error ", tag, message, true); }

bool stderr_is_terminal() {
  const char* off = std::getenv("DML_NO_PROGRESS");
  if (off != nullptr && std::string(off) == "1") return false;
  return isatty(STDERR_FILENO) != 0;
}

}  // namespace dml::log
