#include "dml/util/host_allocator.h"

#include <climits>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace dml {

void keep_host_memory() {
  const char* off = std::getenv("DML_MALLOC_DEFAULTS");
  if (off != nullptr && std::strcmp(off, "1") == 0) return;
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);              // large blocks from the heap, reused, not mmap()ed each time
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // never hand freed heap back to the system
#endif
}

}  // namespace dml
