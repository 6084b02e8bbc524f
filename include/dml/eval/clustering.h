#pragma once
// k-means clustering and normalised mutual information, for the NMI retrieval metric.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace dml {

struct KMeansOptions {
  int64_t restarts = 10;         // k-means++ starts, each run to convergence; the lowest inertia wins (scikit-learn's n_init)
  int64_t max_iterations = 100;  // assignment rounds per start (scikit-learn's max_iter)
  // Start r (0 <= r < restarts) draws from the RNG step first_restart + r, so one start of a
  // restarts = 10 run can be reproduced alone with {restarts = 1, first_restart = r}.
  int64_t first_restart = 0;
};

// restarts >= 1, max_iterations >= 1, 0 <= first_restart and first_restart + restarts <= 2^32.
// Throws OptionError ("restarts", "max_iterations", "first_restart").
void validate_kmeans_options(const KMeansOptions& options);

struct KMeansResult {
  at::Tensor assignments;  // int64 [N], values in [0, k): the kept start's
  at::Tensor centers;      // float32 [k, D]: the centres those assignments were made against
  double inertia = 0;      // the kept start's sum over points of the squared distance to the assigned centre
  int64_t best_restart = 0;                 // which start was kept, in [0, restarts)
  std::vector<double> restart_inertias;     // [restarts]: every start's inertia, in start order
  std::vector<int64_t> restart_iterations;  // [restarts]: assignment rounds every start ran
};

// Lloyd's k-means on points float32 [N, D] (CPU, finite), 1 <= k <= N < 2^32, `options.restarts`
// times; keeps the start with the lowest inertia (the earliest start among equal ones).
// Start r uses the key {seed, kEval, first_restart + r} (first_restart = 0, r = 0 is the key of
// the single start dml had before restarts):
// Initialisation: k-means++ (Arthur & Vassilvitskii 2007). The first centre is item
// random_below(key, 0, 0, N); centre c >= 1 is drawn with probability proportional to the squared
// distance to the nearest chosen centre, using u = random_uniform(key, c, 0) against the cumulative
// sum in item order (uniform over all items, random_below(key, c, 0, N), if every distance is zero).
// Iterations: assign each point to the nearest centre (ties to the lower centre index), then move
// every centre to the mean of its points (a centre without points stays where it is); stop when
// no assignment changes or after max_iterations assignment rounds.
// Inertia: squared distances by direct differences in float32 against the centres of the last
// assignment round, summed in float64 in point order.
// Cost per start: k-means++ O(N D k) in passes over the points, one new centre at a time; each
// round a blockwise GEMM (|c|^2 - 2 x.c per block of points) and a row argmin. Memory besides the
// input: one block's [rows, k] float32 scores (rows chosen to stay under ~256 MB), a float64 copy
// of the points for the centre sums, O(N + k D) more. 60000 x 128 points into 11316 clusters: a
// few minutes per start on 2 cores (dml_bench_kmeans).
// Deterministic for a given input, k, seed and options, whatever the thread count.
// Throws dml::Error on bad shapes, dtypes, devices, k, and OptionError on bad options.
KMeansResult kmeans(const at::Tensor& points, int64_t k, uint64_t seed, const KMeansOptions& options = {});

// kmeans(points, k, seed, options).assignments.
at::Tensor kmeans_assignments(const at::Tensor& points, int64_t k, uint64_t seed, const KMeansOptions& options = {});

// NMI = 2 I(Y; C) / (H(Y) + H(C)) with natural logarithms, for two labelings int64 [N] (any
// values, CPU, N >= 1). Returns 1 when both labelings are a single group (H(Y) + H(C) = 0).
double normalized_mutual_information(const at::Tensor& labels, const at::Tensor& assignments);

}  // namespace dml
