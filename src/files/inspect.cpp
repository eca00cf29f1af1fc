// Summaries of tensor files for reports (files/inspect.hpp).
#include "quantkit/files/inspect.hpp"

#include <algorithm>
#include <filesystem>

#include "quantkit/core/error.hpp"
#include "quantkit/files/file_kind.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/files/tensor_input.hpp"

namespace qk {

namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<float> reference_values(const std::string& path, const Shape& shape) {
  const io::NpyArray ref = read_tensor_input(path);  // FILE.npy or ARCHIVE.npz:KEY
  if (ref.shape() != shape) {
    throw Error(path + ": reference shape " + shape_string(ref.shape()) + " differs from " +
                shape_string(shape));
  }
  return ref.to_vector<float>();
}

}  // namespace

TensorFileKind tensor_file_kind(const std::string& path) {
  if (!has_suffix(path, ".npz")) return TensorFileKind::kNpy;
  const auto names = io::npz_names(path);
  return std::find(names.begin(), names.end(), "meta") != names.end() ? TensorFileKind::kQuantized
                                                                      : TensorFileKind::kNpz;
}

NpySummary summarize_npy(const std::string& path, const std::string& reference) {
  expect_file_kind(path, FileKind::kNpy);
  const io::NpyArray array = io::read_npy(path);
  const std::vector<float> values = array.to_vector<float>();
  NpySummary s;
  s.shape = array.shape();
  s.dtype = array.dtype();
  s.file_bytes = std::filesystem::file_size(path);
  s.stats = compute_stats(values);
  if (!reference.empty()) s.error = compare(reference_values(reference, array.shape()), values);
  return s;
}

QuantizedSummary summarize_quantized(const std::string& path, const std::string& reference) {
  expect_file_kind(path, FileKind::kQuantizedTensor);
  const io::QuantizedFile file = io::read_quantized(path);
  QuantizedSummary s;
  s.meta = file.meta;
  s.file_bytes = std::filesystem::file_size(path);
  s.original_bytes =
      static_cast<std::uint64_t>(shape_numel(file.meta.shape)) * io::dtype_size(file.meta.dtype);
  const auto& sc = file.params.scale;
  const auto& zp = file.params.zero_point;
  s.scales = sc.size();
  s.scale_min = sc.empty() ? 0.0 : *std::min_element(sc.begin(), sc.end());
  s.scale_max = sc.empty() ? 0.0 : *std::max_element(sc.begin(), sc.end());
  s.zero_point_min = zp.empty() ? 0 : *std::min_element(zp.begin(), zp.end());
  s.zero_point_max = zp.empty() ? 0 : *std::max_element(zp.begin(), zp.end());
  s.has_input_scale = !file.input_scale.empty();
  s.compression_ratio =
      s.file_bytes ? static_cast<double>(s.original_bytes) / static_cast<double>(s.file_bytes) : 0.0;
  if (!reference.empty())
    s.error = compare(reference_values(reference, file.meta.shape), dequantize_to_float(file));
  return s;
}

std::vector<NpzMember> npz_members(const std::string& path) {
  std::vector<NpzMember> members;
  for (const auto& name : io::npz_names(path)) {
    const io::NpyArray a = io::read_npz_member(path, name);
    members.push_back({name, a.shape(), a.dtype()});
  }
  return members;
}

std::string format_label(const io::QuantizedFileMeta& m) {
  // Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string temporaries.
  std::string label;
  if (is_codebook(m.element)) {
    label = to_string(m.element);
  } else {
    label = "int";
    label += std::to_string(m.code_bits);
    if (!m.spec.is_signed) label += 'u';
  }
  label += ' ';
  if (m.spec.granularity == Granularity::kPerGroup) {
    label += 'g';
    label += std::to_string(m.spec.group_size);
  } else {
    label += m.spec.granularity == Granularity::kPerChannel ? "per-channel" : "per-tensor";
  }
  return label;
}

}  // namespace qk
