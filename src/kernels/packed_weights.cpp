// Packing float or pre-quantized weights into the kernels' layouts (packed_weights.hpp).
#include "quantkit/kernels/packed_weights.hpp"

#include <cmath>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"

namespace qk::kernels {

namespace {

std::int64_t round_up(std::int64_t n, std::int64_t step) { return (n + step - 1) / step * step; }

void check_shape(std::size_t size, std::int64_t rows, std::int64_t cols, const char* what) {
  if (rows < 0 || cols < 0) throw Error(std::string(what) + ": negative shape");
  if (static_cast<std::int64_t>(size) != rows * cols) {
    throw Error(std::string(what) + ": expected " + std::to_string(rows) + "x" + std::to_string(cols) +
                " values, got " + std::to_string(size));
  }
}

void check_finite(std::span<const float> w, std::int64_t rows, std::int64_t cols, const char* what) {
  reject_nonfinite<float>(w, Shape{rows, cols}, what);
}

void check_group_size(std::int64_t group_size) {
  if (group_size != 32 && group_size != 64 && group_size != 128) {
    throw Error("int4 weights: group size must be 32, 64 or 128, got " + std::to_string(group_size));
  }
}

}  // namespace

Fp32Weights pack_fp32(std::span<const float> w, std::int64_t rows, std::int64_t cols) {
  check_shape(w.size(), rows, cols, "fp32 weights");
  return Fp32Weights{rows, cols, AlignedVector<float>(w.begin(), w.end())};
}

Fp16Weights pack_fp16(std::span<const float> w, std::int64_t rows, std::int64_t cols) {
  check_shape(w.size(), rows, cols, "fp16 weights");
  check_finite(w, rows, cols, "fp16 weights");
  Fp16Weights out;
  out.rows = rows;
  out.cols = cols;
  out.stride = round_up(cols, Fp16Weights::kStep);
  out.bits.assign(static_cast<std::size_t>(rows * out.stride), 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const float v = w[static_cast<std::size_t>(r * cols + c)];
      if (std::fabs(v) > 65504.0f) {
        throw Error("fp16 weights: value " + std::to_string(v) + " at [" + std::to_string(r) + ", " +
                    std::to_string(c) + "] overflows binary16");
      }
      out.bits[static_cast<std::size_t>(r * out.stride + c)] = float_to_half_bits(v);
    }
  }
  return out;
}

Int8Weights pack_int8_codes(std::span<const std::int8_t> codes, std::span<const float> scales,
                            std::int64_t rows, std::int64_t cols) {
  check_shape(codes.size(), rows, cols, "int8 weights");
  if (static_cast<std::int64_t>(scales.size()) != rows) throw Error("int8 weights: need one scale per row");
  // Σ_k 255 * 128 must fit the int32 accumulator (|acc| <= cols * 32640).
  if (cols > 65536) throw Error("int8 weights: more than 65536 columns would overflow the int32 accumulator");
  // Negative scales come from the full range rule (core/spec.hpp RangeRule::kFull): the kernels only multiply.
  for (std::int64_t r = 0; r < rows; ++r) check_scale(scales[static_cast<std::size_t>(r)], "scale", true);
  Int8Weights out;
  out.rows = rows;
  out.cols = cols;
  out.stride = round_up(cols, Int8Weights::kStep);
  out.codes.assign(static_cast<std::size_t>(rows * out.stride), 0);
  out.scales.assign(scales.begin(), scales.end());
  out.row_sums.assign(static_cast<std::size_t>(rows), 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int32_t sum = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::int8_t q = codes[static_cast<std::size_t>(r * cols + c)];
      out.codes[static_cast<std::size_t>(r * out.stride + c)] = q;
      sum += q;
    }
    out.row_sums[static_cast<std::size_t>(r)] = sum;
  }
  return out;
}

Int8Weights pack_int8(std::span<const float> w, std::int64_t rows, std::int64_t cols) {
  check_shape(w.size(), rows, cols, "int8 weights");
  check_finite(w, rows, cols, "int8 weights");
  QuantSpec spec;  // int8, symmetric, per output channel: PyTorch's per_channel_symmetric weights
  spec.granularity = Granularity::kPerChannel;
  spec.axis = 0;
  const TensorView<const float> view(w.data(), {rows, cols});
  std::vector<std::int8_t> codes(w.size());
  if (rows * cols == 0)
    return pack_int8_codes(codes, std::vector<float>(static_cast<std::size_t>(rows), 1.0f), rows, cols);
  const QuantParams p = qk::kernels::observe_and_quantize<float, std::int8_t>(view, spec, codes);
  return pack_int8_codes(codes, p.scale, rows, cols);
}

Int4Weights pack_int4_codes(std::span<const std::int8_t> codes, std::span<const float> scales,
                            std::int64_t rows, std::int64_t cols, std::int64_t group_size) {
  check_group_size(group_size);
  check_shape(codes.size(), rows, cols, "int4 weights");
  const std::int64_t groups = (cols + group_size - 1) / group_size;
  if (static_cast<std::int64_t>(scales.size()) != rows * groups) {
    throw Error("int4 weights: need " + std::to_string(rows * groups) + " scales (rows x groups), got " +
                std::to_string(scales.size()));
  }
  Int4Weights out;
  out.rows = rows;
  out.cols = cols;
  out.group_size = group_size;
  out.stride = round_up(std::max<std::int64_t>(cols, 1), std::max(Int4Weights::kChunk, group_size));
  const std::int64_t stored_groups = out.groups_per_row();
  out.packed.assign(static_cast<std::size_t>(rows * out.stride / 2), 0x88);  // code 0 in both nibbles
  out.scales.assign(static_cast<std::size_t>(rows * stored_groups), 0.0f);
  out.zero_point_terms.assign(static_cast<std::size_t>(rows), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::uint8_t* row = out.packed.data() + r * out.stride / 2;
    double term = 0.0;
    for (std::int64_t g = 0; g < groups; ++g) {
      const float scale = scales[static_cast<std::size_t>(r * groups + g)];
      check_scale(scale, "scale", true);
      out.scales[static_cast<std::size_t>(r * stored_groups + g)] = scale;
      std::int64_t group_sum = 0;
      for (std::int64_t c = g * group_size; c < std::min(cols, (g + 1) * group_size); ++c) {
        const std::int8_t q = codes[static_cast<std::size_t>(r * cols + c)];
        if (q < -8 || q > 7) {
          throw Error("int4 weights: code " + std::to_string(q) + " at [" + std::to_string(r) + ", " +
                      std::to_string(c) + "] is outside [-8, 7]");
        }
        group_sum += q;
        const auto nibble = static_cast<std::uint8_t>(q + 8);
        std::uint8_t& byte = row[c / 32 * 16 + c % 16];
        byte = (c % 32 < 16) ? static_cast<std::uint8_t>((byte & 0xF0) | nibble)
                             : static_cast<std::uint8_t>((byte & 0x0F) | (nibble << 4));
      }
      term += static_cast<double>(scale) * static_cast<double>(group_sum);
    }
    out.zero_point_terms[static_cast<std::size_t>(r)] = static_cast<float>(term);
  }
  return out;
}

Int4Weights pack_int4(std::span<const float> w, std::int64_t rows, std::int64_t cols,
                      std::int64_t group_size) {
  check_group_size(group_size);
  check_shape(w.size(), rows, cols, "int4 weights");
  check_finite(w, rows, cols, "int4 weights");
  const std::int64_t groups = (cols + group_size - 1) / group_size;
  std::vector<std::int8_t> codes(w.size());
  std::vector<float> scales(static_cast<std::size_t>(rows * groups), 1.0f);
  QuantSpec spec;  // signed 4-bit symmetric (rule 2), per group of columns
  spec.bits = 4;
  if (rows * cols > 0 && cols % group_size == 0) {
    spec.granularity = Granularity::kPerGroup;
    spec.group_size = group_size;
    const TensorView<const float> view(w.data(), {rows, cols});
    scales = qk::kernels::observe_and_quantize<float, std::int8_t>(view, spec, codes).scale;
  } else {
    // A short last group: each group on its own, with the same rule.
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t g = 0; g < groups; ++g) {
        const std::int64_t begin = r * cols + g * group_size;
        const std::int64_t len = std::min(group_size, cols - g * group_size);
        const TensorView<const float> view(w.data() + begin, {len});
        const QuantParams p = qk::kernels::choose_qparams<float>(view, spec);
        qk::kernels::quantize<float, std::int8_t>(view, p,
                                     std::span<std::int8_t>(codes).subspan(static_cast<std::size_t>(begin),
                                                                           static_cast<std::size_t>(len)));
        scales[static_cast<std::size_t>(r * groups + g)] = p.scale[0];
      }
    }
  }
  return pack_int4_codes(codes, scales, rows, cols, group_size);
}

std::vector<float> unpack_to_float(const Fp16Weights& w) {
  std::vector<float> out(static_cast<std::size_t>(w.rows * w.cols));
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c)
      out[static_cast<std::size_t>(r * w.cols + c)] =
          half_bits_to_float(w.bits[static_cast<std::size_t>(r * w.stride + c)]);
  return out;
}

std::vector<float> unpack_to_float(const Int8Weights& w) {
  std::vector<float> out(static_cast<std::size_t>(w.rows * w.cols));
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c)
      out[static_cast<std::size_t>(r * w.cols + c)] = dequantize_value<float>(
          w.codes[static_cast<std::size_t>(r * w.stride + c)], w.scales[static_cast<std::size_t>(r)], 0);
  return out;
}

std::vector<std::int8_t> unpack_int4_codes(const Int4Weights& w) {
  std::vector<std::int8_t> out(static_cast<std::size_t>(w.rows * w.cols));
  for (std::int64_t r = 0; r < w.rows; ++r) {
    const std::uint8_t* row = w.packed.data() + r * w.stride / 2;
    for (std::int64_t c = 0; c < w.cols; ++c) {
      const std::uint8_t byte = row[c / 32 * 16 + c % 16];
      const int nibble = (c % 32 < 16) ? (byte & 0x0F) : (byte >> 4);
      out[static_cast<std::size_t>(r * w.cols + c)] = static_cast<std::int8_t>(nibble - 8);
    }
  }
  return out;
}

std::vector<float> unpack_to_float(const Int4Weights& w) {
  const std::vector<std::int8_t> codes = unpack_int4_codes(w);
  std::vector<float> out(codes.size());
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c) {
      const float scale = w.scales[static_cast<std::size_t>(r * w.groups_per_row() + c / w.group_size)];
      out[static_cast<std::size_t>(r * w.cols + c)] =
          dequantize_value<float>(codes[static_cast<std::size_t>(r * w.cols + c)], scale, 0);
    }
  return out;
}

std::int64_t weight_bytes(const Fp32Weights& w) { return w.rows * w.cols * 4; }
std::int64_t weight_bytes(const Fp16Weights& w) { return w.rows * w.stride * 2; }
std::int64_t weight_bytes(const Int8Weights& w) { return w.rows * w.stride + w.rows * 4; }
std::int64_t weight_bytes(const Int4Weights& w) {
  return w.rows * w.stride / 2 + w.rows * w.groups_per_row() * 4;
}

}  // namespace qk::kernels
