#pragma once
// Backbones by name (the --model flag).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dml/model/backbone.h"

namespace dml {

// resnet{18,34,50,101,152}_v1, resnet{18,34,50,101,152}_v2, small_convnet, small_convnet_nobn.
std::vector<std::string> model_names();

// Throws the unknown-name dml::Error (listing model_names()) unless `name` is one of them.
void check_model_name(const std::string& name);

// A freshly built backbone (LibTorch default initialisation, on the CPU). An unknown name is a
// dml::Error that lists model_names(). small_input_stem is ignored by the small convnets.
std::shared_ptr<BackboneImpl> make_backbone(const std::string& name, int64_t in_channels,
                                            bool small_input_stem);

}  // namespace dml
