// Quantized files -> packed GEMV weights: checks that the file's codes are what the kernel computes with
// (signed, zero point 0, rows along axis 0, no input_scale), then packs its codes and scales as they are.
#include "quantkit/files/packed_weight_file.hpp"

#include <algorithm>

#include "quantkit/core/error.hpp"
#include "quantkit/core/pack.hpp"

namespace qk {

namespace {

struct Matrix {
  std::int64_t rows = 0, cols = 0;
};

// Rows and columns of the [shape[0], rest] view, after the checks every packed format shares.
Matrix check_common(const io::QuantizedFile& file, const std::string& name, int bits, const char* kernel) {
  const io::QuantizedFileMeta& m = file.meta;
  const std::string what = name + ": the " + kernel + " GEMV takes ";
  if (m.element != ElementFormat::kInt)
    throw Error(what + "integer codes; this file holds " + to_string(m.element) +
                (m.element == ElementFormat::kNf4 ? " (use io::nf4_view)" : ""));
  if (m.code_bits != bits || !m.spec.is_signed || m.range.min != -(1 << (bits - 1)) ||
      m.range.max != (1 << (bits - 1)) - 1)
    throw Error(what + "signed " + std::to_string(bits) + "-bit codes [" + std::to_string(-(1 << (bits - 1))) +
                ", " + std::to_string((1 << (bits - 1)) - 1) + "]; this file has " + std::to_string(m.code_bits) +
                "-bit codes [" + std::to_string(m.range.min) + ", " + std::to_string(m.range.max) + "]");
  if (stores_zero_points(file.params))
    throw Error(what + "symmetric codes (zero point 0); this file is affine");
  if (!file.input_scale.empty())
    throw Error(what + "plain weights; this file has an input_scale (awq or smoothquant): dequantize it, or "
                       "divide the activations by input_scale before the GEMV");
  if (m.shape.size() < 2)
    throw Error(what + "a matrix [out, in] (or a conv weight); this file holds shape " + shape_string(m.shape));
  Matrix mat;
  mat.rows = m.shape[0];
  mat.cols = mat.rows > 0 ? shape_numel(m.shape) / mat.rows : 0;
  return mat;
}

std::vector<std::int8_t> codes_as_int8(const io::QuantizedFile& file) {
  const auto raw = file.q.raw();
  const std::int64_t numel = shape_numel(file.meta.shape);
  std::vector<std::int8_t> codes(static_cast<std::size_t>(numel));
  if (file.meta.code_bits == 8) {
    std::copy_n(reinterpret_cast<const std::int8_t*>(raw.data()), codes.size(), codes.begin());
  } else {
    unpack_bits<std::int8_t>({reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()}, file.meta.code_bits,
                             true, codes);
  }
  return codes;
}

}  // namespace

kernels::Int8Weights load_int8_weights(const io::QuantizedFile& file, const std::string& name) {
  const Matrix mat = check_common(file, name, 8, "INT8");
  const QuantSpec& s = file.meta.spec;
  std::vector<float> scales;
  if (s.granularity == Granularity::kPerTensor) {
    scales.assign(static_cast<std::size_t>(mat.rows), file.params.scale.at(0));
  } else if (s.granularity == Granularity::kPerChannel &&
             normalize_axis(s.axis, static_cast<int>(file.meta.shape.size())) == 0) {
    scales = file.params.scale;
  } else {
    throw Error(name + ": the INT8 GEMV takes one scale per row (per channel on axis 0) or per tensor; this "
                       "file has " + describe_granularity(s) + " scales");
  }
  try {
    return kernels::pack_int8_codes(codes_as_int8(file), scales, mat.rows, mat.cols);
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }
}

kernels::Int8Weights load_int8_weights(const std::string& path) {
  return load_int8_weights(io::read_quantized(path), path);
}

kernels::Int4Weights load_int4_weights(const io::QuantizedFile& file, const std::string& name) {
  const Matrix mat = check_common(file, name, 4, "INT4");
  const QuantSpec& s = file.meta.spec;
  const std::int64_t g = s.group_size;
  if (s.granularity != Granularity::kPerGroup || (g != 32 && g != 64 && g != 128))
    throw Error(name + ": the INT4 GEMV takes groups of 32, 64 or 128 along each row; this file has " +
                describe_granularity(s) + " scales");
  if (mat.cols % g != 0)  // unreachable for a valid file: groups divide the row
    throw Error(name + ": groups of " + std::to_string(g) + " do not divide the rows");
  try {
    return kernels::pack_int4_codes(codes_as_int8(file), file.params.scale, mat.rows, mat.cols, g);
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }
}

kernels::Int4Weights load_int4_weights(const std::string& path) {
  return load_int4_weights(io::read_quantized(path), path);
}

}  // namespace qk
