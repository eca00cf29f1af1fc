// Reading, checking and writing ONNX models, and the walks over their graphs (onnx_model.hpp).
#include "onnx_model.hpp"

#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <set>

#include "quantkit/core/error.hpp"
#include "quantkit/io/atomic_file.hpp"

namespace qk::onnxfile {

namespace {

using Scope = std::set<std::string>;

bool is_subgraph_attribute(const onnx::AttributeProto& a) {
  return a.type() == onnx::AttributeProto::GRAPH || a.type() == onnx::AttributeProto::GRAPHS || a.has_g() ||
         a.graphs_size() > 0;
}

template <class F>
void for_each_subgraph(const onnx::NodeProto& node, F&& f) {
  for (const auto& a : node.attribute()) {
    if (a.has_g()) f(a.g(), a.name());
    for (const auto& g : a.graphs()) f(g, a.name());
  }
}

std::string node_label(const onnx::NodeProto& node, int index) {
  return "'" + (node.name().empty() ? "#" + std::to_string(index) : node.name()) + "' (" + node.op_type() +
         ")";
}

// Names a subgraph reads from its enclosing scopes: its nodes' inputs that it does not define itself.
void collect_outer_reads(const onnx::GraphProto& g, Scope& reads) {
  Scope defined;
  for (const auto& i : g.input()) defined.insert(i.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  for (const auto& t : g.sparse_initializer()) defined.insert(t.values().name());
  for (const auto& n : g.node())
    for (const auto& o : n.output()) defined.insert(o);
  for (const auto& n : g.node()) {
    for (const auto& i : n.input())
      if (!i.empty() && !defined.count(i)) reads.insert(i);
    for_each_subgraph(n, [&](const onnx::GraphProto& sub, const std::string&) {
      Scope inner;
      collect_outer_reads(sub, inner);
      for (const auto& r : inner)
        if (!defined.count(r)) reads.insert(r);
    });
  }
  for (const auto& o : g.output())
    if (!defined.count(o.name())) reads.insert(o.name());
}

// Every name a node reads, its subgraphs' outer reads included (they are implicit inputs).
std::vector<std::string> node_reads(const onnx::NodeProto& node) {
  std::vector<std::string> reads;
  for (const auto& i : node.input())
    if (!i.empty()) reads.push_back(i);
  for_each_subgraph(node, [&](const onnx::GraphProto& sub, const std::string&) {
    Scope outer;
    collect_outer_reads(sub, outer);
    reads.insert(reads.end(), outer.begin(), outer.end());
  });
  return reads;
}

// Kahn's order of the graph's nodes; throws naming a node on a cycle.
std::vector<int> topological_order(const onnx::GraphProto& g, const std::string& where) {
  const int n = g.node_size();
  std::map<std::string, int> producer;
  for (int i = 0; i < n; ++i)
    for (const auto& o : g.node(i).output())
      if (!o.empty()) producer[o] = i;
  std::vector<std::vector<int>> next(static_cast<std::size_t>(n));
  std::vector<int> pending(static_cast<std::size_t>(n), 0);
  for (int i = 0; i < n; ++i) {
    std::set<int> from;
    for (const auto& r : node_reads(g.node(i))) {
      const auto it = producer.find(r);
      if (it != producer.end()) from.insert(it->second);
    }
    for (int p : from) {
      next[static_cast<std::size_t>(p)].push_back(i);
      ++pending[static_cast<std::size_t>(i)];
    }
  }
  std::deque<int> ready;
  for (int i = 0; i < n; ++i)
    if (pending[static_cast<std::size_t>(i)] == 0) ready.push_back(i);
  std::vector<int> order;
  while (!ready.empty()) {
    const int i = ready.front();
    ready.pop_front();
    order.push_back(i);
    for (int j : next[static_cast<std::size_t>(i)])
      if (--pending[static_cast<std::size_t>(j)] == 0) ready.push_back(j);
  }
  if (static_cast<int>(order.size()) != n) {
    for (int i = 0; i < n; ++i)
      if (pending[static_cast<std::size_t>(i)] > 0)
        throw Error(where + " has a cycle through node " + node_label(g.node(i), i));
  }
  return order;
}

void validate_graph(const onnx::GraphProto& g, const Scope& outer, const std::string& dir,
                    const std::string& where) {
  Scope defined = outer;
  for (const auto& i : g.input()) defined.insert(i.name());
  for (const auto& t : g.initializer()) {
    try {
      check_tensor_data(t, dir);
    } catch (const Error& e) {
      throw Error(where + ": initializer " + e.what());
    }
    defined.insert(t.name());
  }
  for (const auto& t : g.sparse_initializer()) defined.insert(t.values().name());
  // Static single assignment, as the ONNX checker requires: a node output is a new name, in its graph and
  // in every scope around it (a graph input or initializer of the same name would be ambiguous).
  std::set<std::string> produced;
  for (int i = 0; i < g.node_size(); ++i) {
    for (const auto& o : g.node(i).output()) {
      if (o.empty()) continue;
      if (!produced.insert(o).second || defined.count(o))
        throw Error(where + ": value '" + o + "' is defined twice (node " + node_label(g.node(i), i) + ")");
    }
  }
  defined.insert(produced.begin(), produced.end());
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    if (node.op_type().empty()) throw Error(where + ": node #" + std::to_string(i) + " has no op type");
    for (const auto& in : node.input())
      if (!in.empty() && !defined.count(in))
        throw Error(where + ": node " + node_label(node, i) + " reads '" + in + "', which nothing defines");
    for (const auto& a : node.attribute()) {
      if (a.has_t()) {
        try {
          check_tensor_data(a.t(), dir);
        } catch (const Error& e) {
          throw Error(where + ": node " + node_label(node, i) + " attribute '" + a.name() + "': " + e.what());
        }
      }
    }
    for (const auto& a : node.attribute()) {
      if (!is_subgraph_attribute(a)) continue;
      const std::string sub_where =
          where + "/" + (node.name().empty() ? node.op_type() : node.name()) + "." + a.name();
      if (a.has_g()) validate_graph(a.g(), defined, dir, sub_where);
      for (const auto& sg : a.graphs()) validate_graph(sg, defined, dir, sub_where);
    }
  }
  for (const auto& o : g.output())
    if (!defined.count(o.name()))
      throw Error(where + ": output '" + o.name() + "' is not produced by any node");
  topological_order(g, where);
}

// Serialized bytes go straight to the AtomicFile, a buffer at a time.
class AtomicFileStream : public google::protobuf::io::CopyingOutputStream {
 public:
  explicit AtomicFileStream(io::AtomicFile& file) : file_(file) {}
  bool Write(const void* buffer, int size) override {
    file_.write({static_cast<const std::byte*>(buffer), static_cast<std::size_t>(size)});
    return true;
  }

 private:
  io::AtomicFile& file_;
};

void collect_weights(onnx::GraphProto& g, const std::string& path, std::vector<Weight>& out) {
  for (auto& t : *g.mutable_initializer())
    if (is_float_type(t.data_type())) out.push_back({&g, &t, -1, t.name(), path});
  for (int i = 0; i < g.node_size(); ++i) {
    auto& node = *g.mutable_node(i);
    if (node.op_type() == "Constant" && (node.domain().empty() || node.domain() == "ai.onnx") &&
        node.output_size() == 1) {
      for (auto& a : *node.mutable_attribute())
        if (a.name() == "value" && a.has_t() && is_float_type(a.t().data_type()))
          out.push_back({&g, a.mutable_t(), i, node.output(0), path});
    }
    for (auto& a : *node.mutable_attribute()) {
      const std::string sub = path + "/" +
                              (node.name().empty() ? node.op_type() + "_" + std::to_string(i) : node.name()) +
                              "." + a.name();
      if (a.has_g()) collect_weights(*a.mutable_g(), sub, out);
      for (auto& sg : *a.mutable_graphs()) collect_weights(sg, sub, out);
    }
  }
}

bool defines(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& i : g.input())
    if (i.name() == name) return true;
  for (const auto& t : g.initializer())
    if (t.name() == name) return true;
  for (const auto& n : g.node())
    for (const auto& o : n.output())
      if (o == name) return true;
  return false;
}

void add_uses(const onnx::GraphProto& g, const std::string& value, std::vector<Use>& out) {
  for (const auto& node : g.node()) {
    for (int k = 0; k < node.input_size(); ++k)
      if (node.input(k) == value) out.push_back({&node, k, &g});
    for_each_subgraph(node, [&](const onnx::GraphProto& sub, const std::string&) {
      if (!defines(sub, value)) add_uses(sub, value, out);
    });
  }
}

// Ops that only move, select or reshape their first input (or, for Concat, every input): a weight read
// through them is still used by the arithmetic op downstream.
bool is_layout_op(const onnx::NodeProto& node, int input) {
  static const std::set<std::string> data_first = {"Identity", "Reshape", "Unsqueeze", "Squeeze", "Transpose",
                                                   "Slice",    "Split",   "Cast",      "Flatten"};
  if (!node.domain().empty() && node.domain() != "ai.onnx") return false;
  if (node.op_type() == "Concat") return true;
  return input == 0 && data_first.count(node.op_type()) > 0;
}

}  // namespace

LoadedModel load_model(const std::string& path) {
  LoadedModel out;
  out.path = path;
  const std::filesystem::path p(path);
  out.dir = p.parent_path().string();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": no such file");
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  out.file_bytes = static_cast<std::uint64_t>(st.st_size);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open");
  bool parsed = false;
  {
    google::protobuf::io::FileInputStream stream(fd);
    parsed = out.model.ParseFromZeroCopyStream(&stream) && stream.GetErrno() == 0;
  }
  ::close(fd);
  if (!parsed)
    throw Error(path + ": not an ONNX model (the protobuf does not parse; truncated or another format)");
  validate_model(out.model, out.dir, path);
  return out;
}

void validate_model(const onnx::ModelProto& model, const std::string& dir, const std::string& what) {
  if (!model.has_graph() || model.graph().node_size() == 0)
    throw Error(what + ": not an ONNX model (no graph, or a graph without nodes)");
  if (model.ir_version() <= 0) throw Error(what + ": not an ONNX model (no IR version)");
  if (model.ir_version() >= 3 && model.opset_import_size() == 0)
    throw Error(what + ": the model imports no opset");
  try {
    validate_graph(model.graph(), {}, dir, "graph");
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
}

void sort_topologically(onnx::GraphProto& g) {
  for (auto& node : *g.mutable_node())
    for (auto& a : *node.mutable_attribute()) {
      if (a.has_g()) sort_topologically(*a.mutable_g());
      for (auto& sg : *a.mutable_graphs()) sort_topologically(sg);
    }
  const std::vector<int> order = topological_order(g, "graph");
  bool sorted = true;
  for (std::size_t i = 0; i < order.size(); ++i) sorted = sorted && order[i] == static_cast<int>(i);
  if (sorted) return;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  nodes.Swap(g.mutable_node());
  for (int i : order) g.add_node()->Swap(&nodes[i]);
}

std::uint64_t save_model(onnx::ModelProto& model, const std::string& path, const std::string& input_dir,
                         const SaveOptions& options) {
  // Tensors the input kept in external files, and how big the model would be with them inline. Only
  // initializers move out; a Constant node's external tensor is brought inline (its location would be
  // relative to the input's folder).
  std::uint64_t external_bytes = 0;
  std::vector<onnx::TensorProto*> tensors;
  std::vector<bool> movable;
  for_each_graph(*model.mutable_graph(), [&](onnx::GraphProto& g) {
    for (auto& t : *g.mutable_initializer()) {
      tensors.push_back(&t);
      movable.push_back(true);
      if (is_external(t)) external_bytes += raw_bytes(t.data_type(), numel(t));
    }
    for (auto& n : *g.mutable_node())
      for (auto& a : *n.mutable_attribute())
        if (a.has_t() && is_external(a.t())) {
          tensors.push_back(a.mutable_t());
          movable.push_back(false);
          external_bytes += raw_bytes(a.t().data_type(), numel(a.t()));
        }
  });
  const std::uint64_t inline_size = model.ByteSizeLong() + external_bytes;
  const bool go_external = options.external == ExternalData::kAlways ||
                           (options.external == ExternalData::kAuto && inline_size > options.inline_limit);
  std::optional<io::AtomicFile> data;  // created with the first tensor that moves out
  const std::string data_name = std::filesystem::path(path).filename().string() + ".data";
  std::uint64_t data_offset = 0;
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    onnx::TensorProto* t = tensors[k];
    const std::uint64_t bytes = t->data_type() == kString ? 0 : raw_bytes(t->data_type(), numel(*t));
    const bool move_out =
        go_external && movable[k] && t->data_type() != kString && bytes >= options.external_min_bytes;
    if (!move_out && !is_external(*t)) continue;
    std::string raw = read_raw(*t, input_dir);
    t->clear_float_data();
    t->clear_int32_data();
    t->clear_int64_data();
    t->clear_double_data();
    t->clear_uint64_data();
    t->clear_external_data();
    t->clear_raw_data();
    t->clear_data_location();
    if (!move_out) {
      t->set_raw_data(std::move(raw));
      continue;
    }
    if (!data) data.emplace(path + ".data");
    // 4096-byte aligned, so a runtime can map each tensor in place.
    const std::uint64_t aligned = (data_offset + 4095) / 4096 * 4096;
    if (aligned > data_offset) {
      const std::string pad(aligned - data_offset, '\0');
      data->write({reinterpret_cast<const std::byte*>(pad.data()), pad.size()});
    }
    data->write({reinterpret_cast<const std::byte*>(raw.data()), raw.size()});
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&](const char* k, const std::string& v) {
      auto* kv = t->add_external_data();
      kv->set_key(k);
      kv->set_value(v);
    };
    add("location", data_name);
    add("offset", std::to_string(aligned));
    add("length", std::to_string(raw.size()));
    data_offset = aligned + raw.size();
  }
  if (model.ByteSizeLong() > (std::uint64_t{2} << 30) - 1)
    throw Error(path + ": the model is over 2 GB even with its large tensors in external data");
  io::AtomicFile out(path);
  {
    AtomicFileStream sink(out);
    google::protobuf::io::CopyingOutputStreamAdaptor adaptor(&sink);
    if (!model.SerializeToZeroCopyStream(&adaptor)) throw Error(path + ": cannot serialize the model");
    adaptor.Flush();
  }
  std::uint64_t written = model.ByteSizeLong();
  if (data) {
    data->commit();
    written += data_offset;
  }
  out.commit();
  return written;
}

std::int64_t default_opset(const onnx::ModelProto& model) {
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  return 0;
}

void set_default_opset(onnx::ModelProto& model, std::int64_t version) {
  for (auto& o : *model.mutable_opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") {
      o.set_version(version);
      return;
    }
  auto* o = model.add_opset_import();
  o->set_domain("");
  o->set_version(version);
}

std::vector<Weight> float_weights(onnx::ModelProto& model) {
  std::vector<Weight> out;
  collect_weights(*model.mutable_graph(), "main", out);
  return out;
}

std::vector<Use> uses_of(const onnx::GraphProto& graph, const std::string& value) {
  std::vector<Use> out;
  add_uses(graph, value, out);
  return out;
}

WeightUse weight_use(const onnx::GraphProto& graph, const std::string& value) {
  WeightUse out;
  std::deque<Use> todo;
  for (const Use& u : uses_of(graph, value)) todo.push_back(u);
  std::set<const onnx::NodeProto*> seen;
  while (!todo.empty()) {
    const Use u = todo.front();
    todo.pop_front();
    if (is_layout_op(*u.node, u.input)) {
      out.direct = false;
      if (!seen.insert(u.node).second) continue;
      for (const auto& o : u.node->output())
        if (!o.empty())
          for (const Use& next : uses_of(*u.graph, o)) todo.push_back(next);
      continue;
    }
    out.compute.push_back(u);
  }
  return out;
}

NameSet::NameSet(const onnx::ModelProto& model) {
  auto visit = [&](const onnx::GraphProto& g, auto&& self) -> void {
    for (const auto& v : g.input()) used_[v.name()] = 0;
    for (const auto& v : g.output()) used_[v.name()] = 0;
    for (const auto& v : g.value_info()) used_[v.name()] = 0;
    for (const auto& t : g.initializer()) used_[t.name()] = 0;
    for (const auto& n : g.node()) {
      if (!n.name().empty()) used_[n.name()] = 0;
      for (const auto& s : n.input()) used_[s] = 0;
      for (const auto& s : n.output()) used_[s] = 0;
      for_each_subgraph(n, [&](const onnx::GraphProto& sub, const std::string&) { self(sub, self); });
    }
  };
  visit(model.graph(), visit);
}

std::string NameSet::fresh(const std::string& base) {
  if (used_.emplace(base, 0).second) return base;
  for (int& k = used_[base];;) {
    const std::string name = base + "_" + std::to_string(++k);
    if (used_.emplace(name, 0).second) return name;
  }
}

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

std::int64_t int_attribute(const onnx::NodeProto& node, const std::string& name, std::int64_t fallback) {
  const auto* a = find_attribute(node, name);
  return a ? a->i() : fallback;
}

}  // namespace qk::onnxfile
