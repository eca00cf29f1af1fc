// A named layer's weights held in memory as float32: what format evaluation and mixed-precision planning
// work on (the file layer loads them: files/manifest.hpp).
#pragma once

#include <string>
#include <vector>

#include "quantkit/core/tensor_view.hpp"

namespace qk {

struct WeightLayer {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

}  // namespace qk
