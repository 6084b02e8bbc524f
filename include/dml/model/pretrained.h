#pragma once
// Pretrained backbone weights. File format: what torch.save(dict(model.state_dict()), path)
// writes in Python (a plain dict name -> tensor; torch::pickle_load cannot read a saved
// OrderedDict). Names are the backbone's own (torchvision's for the v1 ResNets); "fc.*" entries
// are ignored. launch/convert_torchvision.py writes such files from torchvision weights.
#include <torch/torch.h>

#include <string>

namespace dml {

// $DML_PRETRAINED_DIR/<name>.pt when DML_PRETRAINED_DIR is set, else
// $XDG_CACHE_HOME/dml/pretrained/<name>.pt, else ~/.cache/dml/pretrained/<name>.pt.
std::string default_pretrained_path(const std::string& model_name);

// The command that creates the file for `model_name` at `path` (shown in errors).
std::string convert_command(const std::string& model_name, const std::string& path);

// Throws dml::Error when `path` does not exist; the message prints convert_command (and, for a
// *_v2 model, that torchvision has no such weights).
void check_pretrained_file_exists(const std::string& model_name, const std::string& path);

// Copies every parameter and buffer of `backbone` from the file (converted to the tensor's dtype
// and device), without autograd. Errors (dml::Error, naming the file): the file is missing (the
// message prints convert_command), unreadable or not a dict of tensors; names of the module
// missing from the file; names in the file (other than fc.*) that the module lacks; shapes that
// differ (name, file shape, module shape). Nothing is copied unless everything matches.
void load_pretrained_backbone(torch::nn::Module& backbone, const std::string& path,
                              const std::string& model_name);

}  // namespace dml
