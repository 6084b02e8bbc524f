#pragma once
// The layout contract between the batch sampler, which lays a batch out, and the loss, which reads
// positives from it: the rows of a batch come in class blocks of `batch_k` consecutive rows that share
// one label. One ClassBlocks value configures both sides, so they cannot disagree.
#include <cstdint>

namespace dml {

struct ClassBlocks {
  int64_t batch_k = 5;  // images per class in a block (the reference's default)
};

// batch_k >= 2: an anchor needs at least one positive in its block. Throws OptionError("batch_k").
void validate_class_blocks(const ClassBlocks& blocks);

// Checks host labels [n] against the layout: n is a multiple of batch_k and every block holds one
// label. `who` prefixes the message. Throws dml::Error naming the first offending block.
void check_class_block_labels(const int64_t* labels, int64_t n, const ClassBlocks& blocks, const char* who);

}  // namespace dml
