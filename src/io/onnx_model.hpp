// The ONNX codec behind files/onnx_quant.hpp (private to src/: only src/io and src/files see ONNX's protobuf
// types; no installed header names them).
// One place reads a model (parse, then check everything a writer relies on: tensor sizes and types,
// external data, that every value a node reads is defined, that each graph is acyclic), one place writes it
// (streamed to an AtomicFile, with large tensors moved to an external data file when the model would not
// fit protobuf's 2 GB limit), and the walks over weights and their consumers that every rewrite shares.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qk::onnxfile {

// ONNX TensorProto.DataType values this layer knows the size of.
enum OnnxType : std::int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint32 = 12,
  kUint64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBfloat16 = 16,
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
  kUint4 = 21,
  kInt4 = 22,
};

// "float32", "int8", ... or "type N" for a value this layer does not know.
std::string type_name(std::int32_t data_type);
bool is_known_type(std::int32_t data_type);
bool is_float_type(std::int32_t data_type);  // float16/32/64, bfloat16
// Bytes of `numel` elements stored as raw_data (4-bit types pack two to a byte). Throws for string and
// unknown types, and on overflow.
std::uint64_t raw_bytes(std::int32_t data_type, std::int64_t numel);

struct LoadedModel {
  onnx::ModelProto model;
  std::string path;  // the .onnx file
  std::string dir;   // its folder: external data locations are relative to it
  std::uint64_t file_bytes = 0;
};

// Parses and validates; throws qk::Error "PATH: ..." naming the problem (and the tensor, node or graph).
LoadedModel load_model(const std::string& path);
// Reorders each graph's nodes (subgraphs too) so that every node follows the nodes it reads from, as the
// ONNX checker requires; throws on a cycle. Rewrites append nodes anywhere and call this once at the end.
void sort_topologically(onnx::GraphProto& graph);
// The same checks on a model in memory (load_model calls it); `what` prefixes messages.
void validate_model(const onnx::ModelProto& model, const std::string& dir, const std::string& what);

enum class ExternalData { kAuto, kAlways, kNever };
struct SaveOptions {
  ExternalData external = ExternalData::kAuto;
  // kAuto moves tensors out when the serialized model would exceed this (protobuf refuses 2 GB).
  std::uint64_t inline_limit = std::uint64_t{1800} << 20;
  std::uint64_t external_min_bytes = 1024;  // smaller tensors stay inline
};
// Writes `model` to `path` atomically (and PATH.data beside it when tensors go external); external tensors
// of the input are read from `input_dir` and written inline or into the new data file. Returns the bytes
// written (model plus data file). Nothing is left at either path when it fails.
std::uint64_t save_model(onnx::ModelProto& model, const std::string& path, const std::string& input_dir,
                         const SaveOptions& options = {});

// Tensor contents.
std::int64_t numel(const onnx::TensorProto& tensor);  // product of dims, checked
std::vector<std::int64_t> dims(const onnx::TensorProto& tensor);
// The tensor's values as float32 (float16/32/64 and bfloat16 tensors, raw, typed or external data).
std::vector<float> read_floats(const onnx::TensorProto& tensor, const std::string& model_dir);
// The tensor's raw little-endian bytes (raw_data, typed fields re-encoded, or the external file's range).
std::string read_raw(const onnx::TensorProto& tensor, const std::string& model_dir);
// The tensor's values as int64 (integer types); for shape and axes constants.
std::vector<std::int64_t> read_ints(const onnx::TensorProto& tensor, const std::string& model_dir);
bool is_external(const onnx::TensorProto& tensor);
// Throws naming the tensor when its type is unknown or its data (raw, typed or external) disagrees with its
// shape, or its external file is missing, outside the model's folder or too short.
void check_tensor_data(const onnx::TensorProto& tensor, const std::string& model_dir);

onnx::TensorProto make_tensor(const std::string& name, std::int32_t data_type,
                              const std::vector<std::int64_t>& shape, std::string raw);
onnx::TensorProto make_int64_tensor(const std::string& name, const std::vector<std::int64_t>& values,
                                    bool scalar = false);

// The default-domain opset the model imports (0 when none).
std::int64_t default_opset(const onnx::ModelProto& model);
void set_default_opset(onnx::ModelProto& model, std::int64_t version);

// A float weight of the model: a graph initializer or the `value` of a Constant node, in the main graph
// or any subgraph (If/Loop/Scan bodies).
struct Weight {
  onnx::GraphProto* graph = nullptr;
  onnx::TensorProto* tensor = nullptr;
  int constant_node = -1;  // index in graph->node of the Constant that holds it, or -1 for an initializer
  std::string name;        // the value name the graph's nodes read
  std::string graph_path;  // "main", "main/If_0.else_branch", ...
};
std::vector<Weight> float_weights(onnx::ModelProto& model);

// Where a value is read: (node, input index), in its graph and in subgraphs that see it from outer scope.
struct Use {
  const onnx::NodeProto* node = nullptr;
  int input = 0;
  const onnx::GraphProto* graph = nullptr;  // the graph holding `node`
};
std::vector<Use> uses_of(const onnx::GraphProto& graph, const std::string& value);

// The ops a weight is used by for its arithmetic, following it through ops that only move or reshape
// values (Identity, Reshape, Unsqueeze, Squeeze, Transpose, Slice, Concat, Split, Cast, Flatten; not Gather:
// a weight read by Gather is an embedding table).
// `direct` is true when every arithmetic use reads the weight itself (no layout op in between).
struct WeightUse {
  std::vector<Use> compute;  // arithmetic uses (layout ops followed)
  bool direct = true;
};
WeightUse weight_use(const onnx::GraphProto& graph, const std::string& value);

// Calls f(graph) on the main graph and every subgraph (If/Loop/Scan bodies), outer graphs first. f may add
// to the graph it is given, but not to another graph of the walk (a parent's nodes are being iterated).
template <class F>
void for_each_graph(onnx::GraphProto& graph, F&& f) {
  f(graph);
  for (auto& node : *graph.mutable_node())
    for (auto& a : *node.mutable_attribute()) {
      if (a.has_g()) for_each_graph(*a.mutable_g(), f);
      for (auto& sg : *a.mutable_graphs()) for_each_graph(sg, f);
    }
}
template <class F>
void for_each_graph(const onnx::GraphProto& graph, F&& f) {
  f(graph);
  for (const auto& node : graph.node())
    for (const auto& a : node.attribute()) {
      if (a.has_g()) for_each_graph(a.g(), f);
      for (const auto& sg : a.graphs()) for_each_graph(sg, f);
    }
}

// A name not used by any value, node or initializer of the model: base, base_1, base_2, ...
class NameSet {
 public:
  explicit NameSet(const onnx::ModelProto& model);
  std::string fresh(const std::string& base);

 private:
  std::map<std::string, int> used_;
};

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name);
std::int64_t int_attribute(const onnx::NodeProto& node, const std::string& name, std::int64_t fallback);

}  // namespace qk::onnxfile
