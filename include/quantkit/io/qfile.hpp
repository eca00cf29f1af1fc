// The quantized-tensor file: an .npz that numpy.load opens without allow_pickle. Members:
//   q           integer codes: int8/uint8 with the input's shape at 8 bits; below 8 bits a 1-D uint8
//               array of packed codes (see core/pack.hpp for the bit layout)
//   scale       float32: 0-d per tensor; per channel the input's rank with C at the axis and 1 elsewhere
//               (so (q - zero_point) * scale broadcasts); per group shape[:-1] + [shape[-1] / group_size], or
//               [shape[0], prod(shape[1:]) / group_size] when the group does not divide the last axis of a
//               tensor of rank >= 3 (a conv weight's flattened rows, core/spec.hpp group_row_length);
//               either way numpy dequantizes with q.reshape(scale.shape + (group_size,))
//   scale is float16 instead when meta scale_dtype is "float16"; with meta range_rule "full" scales may be
//   negative (ggml's Q4_0 rule: the value of largest magnitude maps to the lowest code, core/spec.hpp)
//   zero_point  int32, the same shape as scale; absent when every zero point is 0 (meta zero_point_member
//               false, format version 3): read it as 0
//   input_scale (optional) float32 [prod(shape[1:])]: written by AWQ and SmoothQuant
//               (files/weight_method_file.hpp).
//               The codes then quantize W * input_scale (per input column of the [shape[0], rest] view:
//               the last axis of a matrix, the flattened in * k... of a conv weight); the
//               tensor is (q - zero_point) * scale / input_scale, which dequantize_file applies.
//   meta        0-d unicode string holding JSON (format, element, bits, signed, scheme, granularity, axis,
//               group_size, quant_min, quant_max, reduce_range, scale_dtype, range_rule, packing, shape,
//               dtype; zero_point_member in version 3)
//
// element is "int" (the default when absent: files written before it existed) or a codebook format
// (core/element_format.hpp): "fp8-e4m3", "fp8-e5m2" (q: uint8 bit patterns with the input's shape) or
// "nf4" (q: packed 4-bit level indices). A codebook file has bits 8 or 4, signed false, quant_min 0,
// quant_max 2^bits - 1, no zero_point member (version 3; version 2 files, still read, stored zeros), and
// one more member:
//   codebook    float32 [2^bits], the value of every code; the tensor is codebook[q] * scale
//               (numpy: codebook[q] * scale, after unpacking nf4's nibbles, element 2k in the low nibble).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/element_format.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/io/dtype.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"

namespace qk::io {

// Which version a file says: 1 for integer files with a zero_point member (every reader of version 1
// reads them); 3 for any file without one (symmetric integer codes, f16 scales, the full range rule,
// and every codebook file), so an older reader refuses what it would misread. Version 2 (codebook files
// with a zero_point of zeros, written before version 3) is still read. All three are read.
inline constexpr const char* kQuantizedFormat = "quantkit.qtensor/1";
inline constexpr const char* kQuantizedFormatV2 = "quantkit.qtensor/2";
inline constexpr const char* kQuantizedFormatV3 = "quantkit.qtensor/3";

// How an outlier-aware method made the file (qtool quantize --method; meta field "method", optional):
// what `qtool inspect` reports next to the errors it measures.
struct MethodRecord {
  std::string name;  // rtn, importance, awq, gptq, smoothquant
  std::int64_t calibration_rows = 0;
  double alpha = 0;             // awq / smoothquant
  double output_error = 0;      // sum over rows of d H d^T on the calibration set (0: no Hessian)
  double rtn_output_error = 0;  // the same for RTN with the same bits and groups (awq, gptq)
};

struct QuantizedFileMeta {
  QuantSpec spec;                 // bits, signedness, scheme, range, granularity, axis, group size
  QRange range;                   // effective integer range of the codes
  int code_bits = 8;              // bits per stored code: 8 means one byte per code, unpacked
  Shape shape;                    // shape of the original tensor
  DType dtype = DType::kFloat32;  // dtype of the original tensor
  ElementFormat element = ElementFormat::kInt;
  std::optional<MethodRecord> method;
  // Whether the file has a zero_point member. add_quantized_params leaves it out when every zero point is
  // 0 (signed symmetric codes, codebooks), and readers then take 0: 4-bit g32 symmetric costs 5.0 bits per
  // weight with float32 scales, 4.5 with float16 ones, instead of 6.0 with an int32 zero point per group.
  bool zero_point_member = true;
  // Files that drop the zero point, store float16 scales or use the full range rule say version 3, so
  // that a reader of versions 1 and 2 refuses them instead of misreading them.
  bool needs_v3() const {
    return !zero_point_member || spec.scale_dtype != ScaleDType::kFloat32 || spec.range_rule != RangeRule::kPyTorch;
  }
};

// Bits per weight of a file's payload (codes, scales, zero points; not the zip and meta overhead): what
// formats are compared by (ggml's Q4_0: 4.5). zero_point_member: any zero point is not 0.
double payload_bits_per_weight(int code_bits, ScaleDType scale_dtype, bool zero_point_member, std::int64_t slots,
                               std::int64_t numel);

// The JSON text stored in `meta`, and its parser (which validates every field).
std::string encode_meta(const QuantizedFileMeta& meta);
QuantizedFileMeta decode_meta(const std::string& json, const std::string& name);

// Shape of the scale / zero_point arrays for a tensor of `shape` under `spec` (see the file comment).
Shape param_shape(const Shape& shape, const QuantSpec& spec);

// A quantized file read back: metadata, parameters and the raw `q` member.
struct QuantizedFile {
  QuantizedFileMeta meta;
  QuantParams params;
  NpyArray q;
  std::vector<float> input_scale;  // empty unless the file has the optional member
};

// Reads and validates a quantized .npz (members present, dtypes, shapes and sizes consistent with meta).
QuantizedFile read_quantized(const std::string& path);
// The same from an .npz held in memory (name: for messages); the fuzz target's entry point.
QuantizedFile read_quantized_bytes(std::span<const std::byte> bytes, const std::string& name);

// A quantized tensor stored under the prefix "KEY/" of a larger archive (files/checkpoint_file.hpp), read
// and validated as read_quantized does; messages name path:key.
QuantizedFile read_quantized_member(const std::string& path, const std::string& key);

// The checks of read_quantized over members that `member` reads (names: the members present, each read at
// most once), for a quantized tensor kept in another container (files/safetensors_model.hpp); `path`
// names it in every message.
QuantizedFile read_quantized_members(const std::vector<std::string>& names,
                                     const std::function<NpyArray(const std::string&)>& member,
                                     const std::string& path);

// Decodes the codes of a quantized file as int32 (unpacking sub-8-bit codes).
std::vector<std::int32_t> unpack_codes(const QuantizedFile& file);

// The NF4 weights of a file with element nf4 in groups (its q and scale members, viewed in place: the file
// must outlive the view), as the NF4 GEMV and dequantize take them (kernels/block_kernels.hpp): rows are
// the tensor's leading dimensions flattened, columns its last. Throws qk::Error (naming `name`) for another
// element or granularity.
Nf4View nf4_view(const QuantizedFile& file, const std::string& name);

// The meta of a codebook file: the codebook's bits, unsigned codes 0 .. 2^bits - 1, and the granularity
// (per tensor, per channel, per group) of `layout_spec`.
QuantizedFileMeta codebook_meta(ElementFormat element, const QuantSpec& layout_spec, const Shape& shape,
                                DType dtype);

// Adds scale, zero_point and meta members (and a codebook file's codebook) for a tensor to an archive being
// written, each name preceded by `prefix` (a checkpoint's "KEY/"); q is added by the caller.
void add_quantized_params(ArraySink& writer, const QuantizedFileMeta& meta, const QuantParams& params,
                          const std::string& prefix = "");

}  // namespace qk::io
