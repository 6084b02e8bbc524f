#pragma once
// Training allocates and frees the same large host tensors (activations, gradients) every step.
// glibc's malloc serves blocks above its mmap threshold with fresh mmap()s and returns freed heap
// tops to the system, so each step pays tens of thousands of page faults (measured: ~38k per step
// for a bf16 resnet18 at batch 50; about 10% of the step). keep_host_memory() makes it keep what it
// got: no mmap for large blocks, no trimming. The process's memory then stays at its peak, which a
// training process reaches in its first step anyway. No effect with another allocator preloaded
// (jemalloc, tcmalloc), and none when DML_MALLOC_DEFAULTS=1.
namespace dml {

void keep_host_memory();

}  // namespace dml
