#pragma once
// Reference initialisation (MXNet Xavier(magnitude=2), rnd_type uniform, factor_type avg):
// every Conv2d / Linear weight ~ U(-s, s), s = sqrt(2 / ((fan_in + fan_out) / 2)), where
// fan_in = in_channels * kh * kw and fan_out = out_channels * kh * kw (Linear: in, out);
// conv/linear biases 0; BatchNorm weight 1, bias 0, running mean 0, running var 1.
#include <torch/torch.h>

#include <cstdint>

namespace dml {

// s of the formula above for a weight tensor of shape [out, in, k...] (dim >= 2).
double xavier_magnitude2_bound(at::IntArrayRef weight_shape);

// Initialises every module inside `module` (recursively) as above. Draws come from a CPU
// torch::Generator per parameter, seeded from counter_rng (seed, RngStream::kInit, parameter
// ordinal), then copied to the parameter's device: the result does not depend on the device.
void initialise_reference(torch::nn::Module& module, uint64_t seed);

}  // namespace dml
