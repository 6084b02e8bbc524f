#include "dml/pipeline/batch_sampler.h"

#include <torch/torch.h>

#include <algorithm>
#include <unordered_map>

#include "dml/util/counter_rng.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {
namespace {

// Forward Fisher-Yates of `ids`: position i is fixed by draw (index i, draw `round`), so any prefix of the
// result depends only on the draws of that prefix (the world-size invariance rests on this).
std::vector<int64_t> keyed_shuffle(std::vector<int64_t> ids, const RngKey& key, uint32_t round) {
  const int64_t n = static_cast<int64_t>(ids.size());
  for (int64_t i = 0; i + 1 < n; ++i) {
    const int64_t j = i + random_below(key, static_cast<uint64_t>(i), round, static_cast<uint32_t>(n - i));
    std::swap(ids[i], ids[j]);
  }
  return ids;
}

// The first `count` positions of a forward Fisher-Yates permutation of 0..n-1 (draws: index `index`,
// draw i), kept sparse so that a class with many images costs only what is drawn.
std::vector<int64_t> keyed_permutation_prefix(int64_t n, int64_t count, const RngKey& key, uint64_t index) {
  std::unordered_map<int64_t, int64_t> moved;  // position -> value, for positions that differ from identity
  auto value_at = [&](int64_t pos) {
    auto it = moved.find(pos);
    return it == moved.end() ? pos : it->second;
  };
  std::vector<int64_t> prefix(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = i + random_below(key, index, static_cast<uint32_t>(i), static_cast<uint32_t>(n - i));
    const int64_t vi = value_at(i), vj = value_at(j);
    moved[j] = vi;
    prefix[static_cast<size_t>(i)] = vj;
  }
  return prefix;
}

}  // namespace

void validate_batch_plan(const BatchPlanOptions& o) {
  check_option(o.replicas >= 1, "replicas", "batch sampler: replicas is ", o.replicas,
               "; the job needs at least one replica");
  validate_class_blocks(o.blocks);
  const int64_t k = o.blocks.batch_k;
  check_option(o.batch_size >= 1, "batch_size", "batch size is ", o.batch_size, "; use a positive multiple of batch_k (",
               k, ")");
  check_option(o.batch_size % k == 0, "batch_size", "batch size ", o.batch_size, " is not a multiple of batch_k ", k,
               "; every class block has batch_k images, so use e.g. ", (o.batch_size / k + 1) * k);
  check_option(o.batch_size / k >= 2, "batch_size", "batch size / batch_k must be at least 2 classes per replica "
               "(negatives come from other classes), got ", o.batch_size / k);
  check_option(static_cast<uint64_t>(o.replicas) * static_cast<uint64_t>(o.batch_size) < (uint64_t{1} << 31),
               "batch_size", "global batch replicas * batch size = ", o.replicas, " * ", o.batch_size,
               " is too large; lower the batch size");
}

GlobalBatchSampler::GlobalBatchSampler(const std::vector<int64_t>& labels, int64_t num_classes,
                                       const BatchPlanOptions& options, const std::vector<int64_t>& shard_of_class)
    : options_(options), num_rows_(static_cast<int64_t>(labels.size())) {
  validate_batch_plan(options);
  check(num_classes >= 1, "batch sampler: the training split has num_classes = ", num_classes,
        "; it needs at least one class (re-run the prepare tool on a labelled data set)");

  rows_of_class_.assign(static_cast<size_t>(num_classes), {});
  for (int64_t row = 0; row < num_rows_; ++row) {
    const int64_t c = labels[static_cast<size_t>(row)];
    check(c >= 0 && c < num_classes, "batch sampler: label of row ", row, " is ", c, ", outside 0..",
          num_classes - 1, "; the split's labels must be in its label space (re-run the prepare tool)");
    rows_of_class_[static_cast<size_t>(c)].push_back(row);
  }
  int64_t small_classes = 0, smallest = -1;
  for (int64_t c = 0; c < num_classes; ++c) {
    const int64_t n = static_cast<int64_t>(rows_of_class_[static_cast<size_t>(c)].size());
    if (n == 0) continue;
    check(n < (int64_t{1} << 32), "batch sampler: class ", c, " has ", n, " images, more than 2^32-1");
    nonempty_classes_.push_back(c);
    if (n < options.blocks.batch_k) {
      ++small_classes;
      smallest = smallest < 0 ? n : std::min(smallest, n);
    }
  }
  check(!nonempty_classes_.empty(), "batch sampler: no class of the training split has an image (", num_rows_,
        " rows, ", num_classes, " classes); check --data-path and the shards");
  const int64_t per_replica = options.batch_size / options.blocks.batch_k;
  if (options.shard_groups > 0) {
    const int64_t S = options.shard_groups, G = options.replicas * per_replica;
    check(static_cast<int64_t>(shard_of_class.size()) == num_classes, "batch sampler: rank-local shards need the shard "
          "of each of the ", num_classes, " classes, got ", shard_of_class.size());
    check_option(G % S == 0, "batch_size", "rank-local shards: the global batch holds ", G, " classes (replicas ",
                 options.replicas, " x ", per_replica, "), not a multiple of the ", S,
                 " shards; every shard gives the same number of classes per step, so choose the batch size, the "
                 "replicas or the shard count to make it one");
    classes_of_shard_.assign(static_cast<size_t>(S), {});
    for (int64_t c : nonempty_classes_) {
      const int64_t shard = shard_of_class[static_cast<size_t>(c)];
      check(shard >= -1 && shard < S, "batch sampler: class ", c, " is in shard ", shard, " of ", S);
      if (shard >= 0) classes_of_shard_[static_cast<size_t>(shard)].push_back(c);
    }
    for (int64_t shard = 0; shard < S; ++shard) {
      const auto n = static_cast<int64_t>(classes_of_shard_[static_cast<size_t>(shard)].size());
      check_option(n == 0 || n >= G / S, "batch_size", "rank-local shards: shard ", shard, " holds ", n,
                   " classes but every step draws ", G / S, " from each shard; lower the batch size or use fewer "
                   "shards");
    }
  }
  check_option(per_replica <= num_nonempty_classes(), "batch_size", "batch size ", options.batch_size, " / batch_k ",
               options.blocks.batch_k, " = ", per_replica, " classes per replica, but the training split has only ",
               num_nonempty_classes(), " classes with images; a replica's classes must be distinct, so lower "
               "the batch size or raise batch_k");
  // Every rank builds the same sampler: the warning comes from rank 0 only.
  if (small_classes > 0 && log::rank() == 0) {
    log::warn("data", str(small_classes, " of ", num_nonempty_classes(), " training classes have fewer than batch_k = ",
                          options.blocks.batch_k, " images (smallest: ", smallest,
                          "); their blocks repeat images (drawn with replacement)"));
  }
}

std::vector<int64_t> GlobalBatchSampler::stratified_classes(uint64_t step) const {
  const int64_t S = options_.shard_groups;
  const int64_t G = options_.replicas * (options_.batch_size / options_.blocks.batch_k);
  const int64_t per_shard = G / S;
  const RngKey key{options_.seed, RngStream::kClasses, step};
  std::vector<int64_t> sequence(static_cast<size_t>(G), -1);
  for (int64_t shard = 0; shard < S; ++shard) {
    const std::vector<int64_t>& classes = classes_of_shard_[static_cast<size_t>(shard)];
    if (classes.empty()) continue;  // a shard this rank does not hold
    const std::vector<int64_t> perm = keyed_shuffle(classes, key, static_cast<uint32_t>(shard));
    std::copy(perm.begin(), perm.begin() + per_shard, sequence.begin() + shard * per_shard);
  }
  return sequence;
}

std::vector<int64_t> GlobalBatchSampler::global_classes(uint64_t step) const {
  if (options_.shard_groups > 0) return stratified_classes(step);
  const int64_t C = num_nonempty_classes();
  const int64_t g = options_.batch_size / options_.blocks.batch_k;
  const int64_t G = options_.replicas * g;
  const int64_t num_perms = (G + C - 1) / C;
  const RngKey key{options_.seed, RngStream::kClasses, step};
  std::vector<std::vector<int64_t>> perms;
  perms.reserve(static_cast<size_t>(num_perms));
  for (int64_t p = 0; p < num_perms; ++p) perms.push_back(keyed_shuffle(nonempty_classes_, key, static_cast<uint32_t>(p)));

  // Repair chunks that straddle two permutations (only when G > C; g <= C so a chunk spans at most two).
  std::vector<char> in_tail(rows_of_class_.size(), 0);
  for (int64_t r = 0; r < options_.replicas; ++r) {
    const int64_t begin = r * g, end = begin + g;
    const int64_t p = begin / C;
    if ((end - 1) / C == p) continue;
    const std::vector<int64_t>& tail_perm = perms[static_cast<size_t>(p)];
    std::vector<int64_t>& head_perm = perms[static_cast<size_t>(p + 1)];
    for (int64_t i = begin % C; i < C; ++i) in_tail[static_cast<size_t>(tail_perm[static_cast<size_t>(i)])] = 1;
    const int64_t head = end - (p + 1) * C;
    int64_t cursor = head;
    for (int64_t j = 0; j < head; ++j) {
      if (!in_tail[static_cast<size_t>(head_perm[static_cast<size_t>(j)])]) continue;
      while (in_tail[static_cast<size_t>(head_perm[static_cast<size_t>(cursor)])]) ++cursor;  // exists: see header
      std::swap(head_perm[static_cast<size_t>(j)], head_perm[static_cast<size_t>(cursor)]);
      ++cursor;
    }
    for (int64_t i = begin % C; i < C; ++i) in_tail[static_cast<size_t>(tail_perm[static_cast<size_t>(i)])] = 0;
  }

  std::vector<int64_t> sequence;
  sequence.reserve(static_cast<size_t>(G));
  for (const auto& perm : perms) {
    for (int64_t c : perm) {
      if (static_cast<int64_t>(sequence.size()) == G) break;
      sequence.push_back(c);
    }
  }
  return sequence;
}

std::vector<int64_t> GlobalBatchSampler::global_batch(uint64_t step) const {
  const int64_t k = options_.blocks.batch_k;
  const std::vector<int64_t> sequence = global_classes(step);
  std::unordered_map<int64_t, int64_t> occurrences;
  for (int64_t c : sequence) {
    if (c >= 0) ++occurrences[c];
  }

  const RngKey key{options_.seed, RngStream::kImages, step};
  std::unordered_map<int64_t, std::vector<int64_t>> order;  // class -> permuted positions actually used
  for (const auto& [c, count] : occurrences) {
    const int64_t n = static_cast<int64_t>(rows_of_class_[static_cast<size_t>(c)].size());
    order[c] = keyed_permutation_prefix(n, std::min(n, count * k), key, static_cast<uint64_t>(c));
  }

  std::vector<int64_t> rows;
  rows.reserve(sequence.size() * static_cast<size_t>(k));
  std::unordered_map<int64_t, int64_t> seen;
  for (int64_t c : sequence) {
    if (c < 0) {  // a class of a shard this sampler does not see
      rows.insert(rows.end(), static_cast<size_t>(k), -1);
      continue;
    }
    const int64_t j = seen[c]++;
    const std::vector<int64_t>& class_rows = rows_of_class_[static_cast<size_t>(c)];
    const std::vector<int64_t>& perm = order[c];
    const int64_t n = static_cast<int64_t>(class_rows.size());
    for (int64_t t = 0; t < k; ++t) {
      rows.push_back(class_rows[static_cast<size_t>(perm[static_cast<size_t>((j * k + t) % n)])]);
    }
  }
  return rows;
}

std::vector<int64_t> GlobalBatchSampler::global_labels(uint64_t step) const {
  std::vector<int64_t> labels;
  labels.reserve(static_cast<size_t>(options_.replicas * options_.batch_size));
  for (int64_t c : global_classes(step)) labels.insert(labels.end(), static_cast<size_t>(options_.blocks.batch_k), c);
  return labels;
}

std::vector<int64_t> GlobalBatchSampler::replica_rows(uint64_t step, int64_t replica) const {
  check(replica >= 0 && replica < options_.replicas, "batch sampler: replica ", replica, " outside 0..",
        options_.replicas - 1);
  const std::vector<int64_t> all = global_batch(step);
  const auto begin = all.begin() + replica * options_.batch_size;
  std::vector<int64_t> rows(begin, begin + options_.batch_size);
  check(std::find(rows.begin(), rows.end(), int64_t{-1}) == rows.end(), "batch sampler: replica ", replica,
        " draws classes from shards this rank did not open; with rank-local shards rank r must hold shards "
        "[r*S/R, (r+1)*S/R)");
  return rows;
}

}  // namespace dml
