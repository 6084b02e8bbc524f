#pragma once
// k-means clustering and normalised mutual information, for the NMI retrieval metric.
#include <cstdint>

namespace at {
class Tensor;
}

namespace dml {

// Lloyd's k-means on points float32 [N, D] (CPU, finite), 1 <= k <= N. Returns the assignments,
// int64 [N] with values in [0, k).
// Initialisation: k-means++ (Arthur & Vassilvitskii 2007). The first centre is item
// random_below({seed, kEval, 0}, 0, 0, N); centre c >= 1 is drawn with probability proportional to
// the squared distance to the nearest chosen centre, using u = random_uniform({seed, kEval, 0}, c, 0)
// against the cumulative sum in item order (uniform over all items if every distance is zero).
// Iterations: assign each point to the nearest centre (ties to the lower centre index), then move
// every centre to the mean of its points (a centre without points stays where it is); stop when
// no assignment changes or after max_iterations assignment rounds.
// Deterministic for a given input and seed, whatever the thread count.
at::Tensor kmeans_assignments(const at::Tensor& points, int64_t k, uint64_t seed, int64_t max_iterations = 100);

// NMI = 2 I(Y; C) / (H(Y) + H(C)) with natural logarithms, for two labelings int64 [N] (any
// values, CPU, N >= 1). Returns 1 when both labelings are a single group (H(Y) + H(C) = 0).
double normalized_mutual_information(const at::Tensor& labels, const at::Tensor& assignments);

}  // namespace dml
