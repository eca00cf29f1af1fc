// Post-training quantization of tensors stored in files: .npy in, quantized .npz out (and back), streamed
// over a memory-mapped input in chunks so that a large file is never copied whole.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "quantkit/core/element_format.hpp"
#include "quantkit/core/progress.hpp"
#include "quantkit/core/qparams.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/io/dtype.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/ptq/weight_spec.hpp"

namespace qk {

// What happens to NaN and Inf. kReject (the default) fails with the count and the first index (a FileError,
// FileRemedy::kSaturateNonFinite).
// kSaturate leaves them out of the observed range, maps +Inf to qmax, -Inf to qmin and NaN to the
// zero point (so NaN dequantizes to 0.0); fake-quant does the same in float.
enum class NonFinitePolicy { kReject, kSaturate };

struct FileQuantOptions {
  // For integer codes, everything about them; for a codebook element only the granularity (per tensor,
  // per channel and its axis, per group and its size): the codebook fixes the bits, no zero point.
  QuantSpec spec;
  ElementFormat element = ElementFormat::kInt;  // fp8-e4m3, fp8-e5m2, nf4: ptq/codebook_quant.hpp
  std::optional<QParams> fixed_params;          // skip the observer: per-tensor scale and zero point
  // Skip the observer: stored parameters (e.g. from a calibration file), one per slot of `spec`.
  std::optional<QuantParams> given_params;
  NonFinitePolicy nonfinite = NonFinitePolicy::kReject;
  ProgressFn progress;                                  // called with the fraction done, 0..1
  std::int64_t chunk_elements = std::int64_t{1} << 22;  // elements per streaming chunk
};

struct FileQuantReport {
  Shape shape;
  io::DType dtype = io::DType::kFloat32;
  std::int64_t numel = 0;
  std::int64_t nonfinite = 0;      // NaN/Inf values seen (only non-zero with kSaturate)
  std::uint64_t input_bytes = 0;   // bytes of the input array's data
  std::uint64_t output_bytes = 0;  // size of the written file
  std::int64_t slots = 0;          // number of scales (1, channels or groups)
  int code_bits = 8;
  QRange range;
  double bits_per_weight = 0;  // of the written payload (io::payload_bits_per_weight); quantize_file only
};

// IN.npy -> OUT.npz in the quantized-file format (io/qfile.hpp). Writes atomically; nothing is created
// when anything fails. A codebook element takes no fixed or given parameters; under kSaturate, ±Inf
// encode as ±the largest value and NaN as 0.
FileQuantReport quantize_file(const std::string& input, const std::string& output,
                              const FileQuantOptions& options);

// IN.npy -> OUT.npy, quantized then dequantized in the input's float dtype.
FileQuantReport fake_quantize_file(const std::string& input, const std::string& output,
                                   const FileQuantOptions& options);

// A quantized .npz -> OUT.npy in float32, float16 or float64.
FileQuantReport dequantize_file(const std::string& input, const std::string& output,
                                io::DType out_dtype = io::DType::kFloat32);

// The dequantized float32 values of a quantized file read into memory.
std::vector<float> dequantize_to_float(const io::QuantizedFile& file);

}  // namespace qk
