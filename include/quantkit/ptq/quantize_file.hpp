// Moved: quantizing files is the file layer's (files/quantize_file.hpp); default_weight_spec is in
// ptq/weight_spec.hpp. Kept only so that src/perf compiles until it includes ptq/weight_spec.hpp.
#pragma once

#include "quantkit/ptq/weight_spec.hpp"
