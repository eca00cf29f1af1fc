// What a tensor file holds, for reports: statistics of a .npy, the spec, scales and size of a quantized
// .npz, the members of any other .npz, and with a reference .npy the error against it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/dtype.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {

enum class TensorFileKind { kNpy, kQuantized, kNpz };
// An .npz with a "meta" member is a quantized tensor file, any other .npz an archive; the rest is .npy.
TensorFileKind tensor_file_kind(const std::string& path);

struct NpySummary {
  Shape shape;
  io::DType dtype = io::DType::kFloat32;
  std::uint64_t file_bytes = 0;
  TensorStats stats;
  std::optional<ErrorStats> error;  // against the reference, when one was given
};
// reference: a .npy of the same shape, or empty. Errors name the file and the problem.
NpySummary summarize_npy(const std::string& path, const std::string& reference = "");

struct QuantizedSummary {
  io::QuantizedFileMeta meta;
  std::size_t scales = 0;
  double scale_min = 0, scale_max = 0;  // 0 when there are no scales (an empty tensor per channel)
  std::int32_t zero_point_min = 0, zero_point_max = 0;
  bool has_input_scale = false;
  std::uint64_t file_bytes = 0;
  std::uint64_t original_bytes = 0;  // the tensor in the dtype it was quantized from
  double compression_ratio = 0;      // original_bytes / file_bytes
  std::optional<ErrorStats> error;   // dequantized against the reference, when one was given
};
QuantizedSummary summarize_quantized(const std::string& path, const std::string& reference = "");

struct NpzMember {
  std::string name;
  Shape shape;
  io::DType dtype = io::DType::kFloat32;
};
std::vector<NpzMember> npz_members(const std::string& path);

// A quantized file's format in a few words: "int4 g32", "int8u per-channel", "nf4 g64", "fp8-e4m3
// per-tensor".
std::string format_label(const io::QuantizedFileMeta& meta);

}  // namespace qk
