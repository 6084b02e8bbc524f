#pragma once
// SIGTERM and SIGUSR1 (Slurm preemption, requeue) request a clean stop: the trainer checks
// stop_requested() at every step boundary (agreed across ranks), checkpoints, and exits 0.
namespace dml {

void install_stop_signal_handlers();
bool stop_requested();
void clear_stop_request();  // for tests

}  // namespace dml
