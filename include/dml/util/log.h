#pragma once
// Rank-aware, tagged logging. info() prints on rank 0 only; warn()/error() print on every rank
// with the rank number. Tags: "data", "model", "dist", "train", "eval", "ckpt", "prepare".
#include <string>

namespace dml::log {

// Call once after the communicator exists; before that every process counts as rank 0.
void set_rank(int rank, int world_size);
int rank();

void info(const std::string& tag, const std::string& message);
void warn(const std::string& tag, const std::string& message);
void error(const std::string& tag, const std::string& message);

// True when stderr is a terminal (progress bars) and not disabled by DML_NO_PROGRESS=1.
bool stderr_is_terminal();

}  // namespace dml::log
