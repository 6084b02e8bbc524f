#include "dml/model/model_factory.h"

#include "dml/model/resnet.h"
#include "dml/model/small_convnet.h"
#include "dml/util/error.h"

namespace dml {

namespace {
constexpr int kDepths[] = {18, 34, 50, 101, 152};

std::string joined_names() {
  std::string out;
  for (const auto& n : model_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}
}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const char* family : {"_v1", "_v2"}) {
    for (int depth : kDepths) names.push_back(str("resnet", depth, family));
  }
  names.push_back("small_convnet");
  names.push_back("small_convnet_nobn");
  return names;
}

void check_model_name(const std::string& name) {
  for (const auto& n : model_names()) {
    if (n == name) return;
  }
  throw OptionError("name", str("unknown model name '", name, "'; valid names are: ", joined_names()));
}

std::shared_ptr<BackboneImpl> make_backbone(const std::string& name, int64_t in_channels,
                                            bool small_input_stem) {
  if (name == "small_convnet") return std::make_shared<SmallConvNetImpl>(in_channels, /*batch_norm=*/true);
  if (name == "small_convnet_nobn") return std::make_shared<SmallConvNetImpl>(in_channels, /*batch_norm=*/false);
  for (int depth : kDepths) {
    const ResNetOptions options{depth, in_channels, small_input_stem};
    if (name == str("resnet", depth, "_v1")) return std::make_shared<ResNetV1Impl>(options);
    if (name == str("resnet", depth, "_v2")) return std::make_shared<ResNetV2Impl>(options);
  }
  check_model_name(name);  // throws: every valid name returned above
  throw Error(str("model factory: ", name, " is listed but not built; this is a bug"));
}

}  // namespace dml
