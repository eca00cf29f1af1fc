// A quantized file (io/qfile.hpp) straight into the packed weights the GEMV/GEMM kernels read
// (kernels/packed_weights.hpp), with no float round trip: the file's codes and scales are the kernel's.
// Rows are the tensor's first axis, columns the rest flattened (a conv weight [out, in, kh, kw] is a
// layer of in * kh * kw columns). NF4 files need no packing: io::nf4_view(file) views them in place.
#pragma once

#include <string>

#include "quantkit/io/qfile.hpp"
#include "quantkit/kernels/packed_weights.hpp"

namespace qk {

// 8-bit signed integer codes with zero points of 0, one scale per row (per channel on axis 0) or one for
// the tensor; what `qtool quantize W.npy -o W.npz` writes by default.
kernels::Int8Weights load_int8_weights(const io::QuantizedFile& file, const std::string& name);
kernels::Int8Weights load_int8_weights(const std::string& path);

// 4-bit signed integer codes with zero points of 0 in groups of 32, 64 or 128 along each row
// (`qtool quantize W.npy -o W.npz --bits 4 --group-size 32`; --scale-dtype f16 and --range full too).
kernels::Int4Weights load_int4_weights(const io::QuantizedFile& file, const std::string& name);
kernels::Int4Weights load_int4_weights(const std::string& path);

}  // namespace qk
