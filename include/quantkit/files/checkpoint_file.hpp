// A whole checkpoint in one .npz (numpy.savez of a state dict) quantized into one .npz. Every floating
// member of rank >= 2 that the include/exclude patterns select becomes the members KEY/q, KEY/scale,
// [KEY/zero_point,] [KEY/codebook,] KEY/meta: the quantized-tensor layout (io/qfile.hpp) under the prefix
// "KEY/". Every other member (biases, norms, integer buffers) is copied unchanged. The member
// quantkit_checkpoint, a 0-d JSON string, lists both:
//   {"format": "quantkit.qcheckpoint/1", "quantized": [keys], "copied": [keys]}
// numpy reads it with np.load alone: np.load("model.q.npz")["fc1.weight/q"]. The output is assembled in
// memory (the quantized size plus the copied members) and written atomically; the input's members are read
// one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "quantkit/core/progress.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/io/dtype.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/mixed/plan.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {

inline constexpr const char* kCheckpointFormat = "quantkit.qcheckpoint/1";
inline constexpr const char* kCheckpointIndexMember = "quantkit_checkpoint";

struct CheckpointQuantOptions {
  // The options for one member (the spec's defaults depend on its rank, e.g. per channel on axis 0).
  std::function<FileQuantOptions(const Shape&)> options_for;
  std::vector<std::string> include;  // shell patterns (fnmatch) on member names; empty: every member
  std::vector<std::string> exclude;  // applied after include
  // A mixed-precision plan (mixed/plan.hpp, e.g. from a planner run over the model itself; safetensors
  // models only): each tensor it names gets its layer's format, an integer format quantized with
  // candidate_spec's spec (options_for is not used), float16 / float32 stored as F16 / F32; every tensor it
  // does not name is copied. include/exclude must be empty. Every layer must name a floating tensor of
  // the layer's shape. The caller keeps the plan alive.
  const Plan* plan = nullptr;
  ProgressFn progress;  // fraction of members done
};

struct CheckpointEntry {
  std::string name;
  Shape shape;
  io::DType dtype = io::DType::kFloat32;  // .npz members (a safetensors model leaves it float32)
  std::string dtype_label;                // the dtype as the container names it: "float32", "BF16"
  bool quantized = false;
  std::string reason;      // why a member was copied ("rank 1", "int64", "excluded by 'x'", "not included")
  // A quantized member whose rows hold no whole group is quantized per output channel instead; this says
  // so ("per channel: group size 32 divides neither ..."). Empty otherwise.
  std::string note;
  FileQuantReport report;  // quantized members
};

struct CheckpointReport {
  std::vector<CheckpointEntry> members;
  std::uint64_t input_bytes = 0;
  std::uint64_t output_bytes = 0;
};

// Why `name` is copied rather than quantized, or "" when it is quantized.
std::string checkpoint_copy_reason(const std::string& name, const Shape& shape, io::DType dtype,
                                   const std::vector<std::string>& include, const std::vector<std::string>& exclude);
// The same for any container: `floating` says whether the dtype can be quantized, `dtype_label` names it.
std::string checkpoint_copy_reason(const std::string& name, const Shape& shape, bool floating,
                                   const std::string& dtype_label, const std::vector<std::string>& include,
                                   const std::vector<std::string>& exclude);

// IN.npz -> OUT.npz as above. Errors name the archive and the member (a group size that fits no row of
// one tensor: exclude it, or choose another). Nothing is written when anything fails.
CheckpointReport quantize_checkpoint(const std::string& input, const std::string& output,
                                     const CheckpointQuantOptions& options);

struct CheckpointIndex {
  std::vector<std::string> quantized, copied;
};
// Whether the .npz at path is a quantized checkpoint (has the index member); never throws.
bool is_quantized_checkpoint(const std::string& path);
CheckpointIndex read_checkpoint_index(const std::string& path);

// One quantized member, read and validated as read_quantized reads a file (messages name path:key).
io::QuantizedFile read_checkpoint_tensor(const std::string& path, const std::string& key);

// What each quantized member of a checkpoint is (format, payload bits per weight) and, with the original
// .npz as reference, its error against the original member (what `qtool inspect` prints).
struct CheckpointTensorSummary {
  std::string name;
  io::QuantizedFileMeta meta;
  double bits_per_weight = 0;
  bool has_reference = false;
  ErrorStats error;
};
std::vector<CheckpointTensorSummary> summarize_checkpoint(const std::string& path,
                                                          const std::string& reference = "");

// A quantized checkpoint back to a plain .npz: quantized members dequantized to out_dtype (float16,
// float32 or float64), the copied ones copied. Same member names and shapes as the original.
CheckpointReport dequantize_checkpoint(const std::string& input, const std::string& output,
                                       io::DType out_dtype = io::DType::kFloat32);

}  // namespace qk
