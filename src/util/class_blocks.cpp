#include "dml/util/class_blocks.h"

#include "dml/util/error.h"

namespace dml {

void validate_class_blocks(const ClassBlocks& blocks) {
  check_option(blocks.batch_k >= 2, "batch_k", "batch_k is ", blocks.batch_k,
               "; it must be at least 2 (an anchor needs a positive in its class block)");
}

void check_class_block_labels(const int64_t* labels, int64_t n, const ClassBlocks& blocks, const char* who) {
  validate_class_blocks(blocks);
  const int64_t k = blocks.batch_k;
  check(n % k == 0, who, ": ", n, " rows are not a whole number of class blocks of batch_k = ", k,
        "; lay the batch out with the batch sampler (blocks of batch_k rows of one class)");
  for (int64_t begin = 0; begin < n; begin += k) {
    for (int64_t row = begin + 1; row < begin + k; ++row) {
      check(labels[row] == labels[begin], who, ": block ", begin / k, " (rows ", begin, "..", begin + k - 1,
            ") holds labels ", labels[begin], " and ", labels[row], " (row ", row,
            "); positives are the other rows of an anchor's block, so every block of batch_k = ", k,
            " rows must hold one class, as the batch sampler lays it out");
    }
  }
}

}  // namespace dml
