// One checkpoint member through the quantizers (checkpoint_member.hpp).
#include "checkpoint_member.hpp"

#include "quantkit/core/error.hpp"

namespace qk::detail {

namespace {

std::string fall_back_to_channels(QuantSpec& spec, const Shape& shape) {
  if (spec.granularity != Granularity::kPerGroup) return "";
  try {
    (void)group_row_length(shape, spec.group_size);
    return "";
  } catch (const Error& e) {
    spec.granularity = Granularity::kPerChannel;
    spec.axis = 0;
    spec.group_size = 0;
    return std::string("per channel: ") + e.what();
  }
}

}  // namespace

FileQuantReport quantize_member(const io::NpyArray& a, const std::string& where,
                                const CheckpointQuantOptions& options, const QuantizedSink& sink,
                                std::string& note) {
  try {
    FileQuantOptions o = options.options_for(a.shape());
    o.progress = {};
    note = fall_back_to_channels(o.spec, a.shape());
    return is_codebook(o.element) ? quantize_codebook_array(a, sink, o) : quantize_array(a, sink, o);
  } catch (const Error& err) {
    // The array's own name leads the message ("NAME: problem"); the member's full name replaces it.
    std::string what = err.what();
    const std::string lead = a.name() + ": ";
    if (!a.name().empty() && what.starts_with(lead)) what.erase(0, lead.size());
    throw Error(where + ": " + what + " (exclude the member to copy it unquantized)");
  }
}

CheckpointTensorSummary tensor_summary(const std::string& name, const io::QuantizedFile& file) {
  CheckpointTensorSummary s;
  s.name = name;
  s.meta = file.meta;
  s.bits_per_weight = io::payload_bits_per_weight(file.meta.code_bits, file.meta.spec.scale_dtype,
                                                  stores_zero_points(file.params),
                                                  static_cast<std::int64_t>(file.params.scale.size()),
                                                  shape_numel(file.meta.shape));
  return s;
}

}  // namespace qk::detail
