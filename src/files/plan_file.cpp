// Mixed-precision plan files: JSON encoding, validated reading, and applying a plan to weight files.
#include "quantkit/files/plan_file.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/files/manifest.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/files/onnx_quant.hpp"
#include "quantkit/files/safetensors_quant.hpp"
#include "quantkit/files/tensor_input.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/safetensors_checkpoint.hpp"

namespace fs = std::filesystem;

namespace qk {

namespace {

// JSON has no infinity: an exact layer's SQNR is written as null.
nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

BudgetKind parse_objective(const std::string& s, const std::string& where) {
  for (const BudgetKind k : {BudgetKind::kAverageBits, BudgetKind::kBytes, BudgetKind::kMaxError}) {
    if (s == to_string(k)) return k;
  }
  throw Error(where + ": unknown objective '" + s + "' (average-bits, bytes or max-error)");
}

std::string stored_path(const std::string& file, const std::string& relative_to) {
  const fs::path abs = fs::absolute(file).lexically_normal();
  if (relative_to.empty()) return abs.string();
  const fs::path base = fs::absolute(relative_to).lexically_normal();
  const fs::path rel = abs.lexically_relative(base);
  if (!rel.empty() && *rel.begin() != "..") return rel.string();
  return abs.string();
}

// A layer's output file name: the name with every character outside [A-Za-z0-9._-] replaced by '_' and a
// leading '.' made '_', so that no name can reach outside the output folder or hide as a dot file.
std::string file_stem(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) c = '_';
  }
  if (out.empty() || out.front() == '.') out.insert(out.begin(), '_');
  return out;
}

}  // namespace

std::string plan_to_json(const Plan& plan, const std::string& relative_to) {
  nlohmann::json j;
  j["format"] = kMixedPlanFormat;
  j["objective"] = to_string(plan.objective);
  j["budget"] = plan.budget;
  j["error_measure"] = plan.error_measure;
  j["suboptimality_bound"] = plan.suboptimality_bound;
  j["layers"] = nlohmann::json::array();
  for (const PlanLayer& l : plan.layers) {
    j["layers"].push_back({{"name", l.name},
                           {"file", stored_path(l.file, relative_to)},
                           {"shape", l.shape},
                           {"format", to_string(l.format)},
                           {"bits", l.format.bits()},
                           {"granularity", granularity_name(l.format, l.shape)},
                           {"group_size", l.format.group_size},
                           {"weights", l.weights},
                           {"bytes", l.bytes},
                           {"error", l.error},
                           {"mse", l.mse},
                           {"sqnr_db", finite_or_null(l.sqnr_db)},
                           {"pinned_by", l.pinned_by}});
    if (!std::isnan(l.output_sqnr_db))
      j["layers"].back()["output_sqnr_db"] = finite_or_null(l.output_sqnr_db);
  }
  const double signal = [&] {
    double s = 0;
    for (const auto& l : plan.layers)
      if (std::isfinite(l.sqnr_db))
        s += l.mse * std::pow(10.0, l.sqnr_db / 10.0) * static_cast<double>(l.weights);
    return s;
  }();
  const double sse = plan.total_mse() * static_cast<double>(plan.total_weights());
  j["totals"] = {
      {"weights", plan.total_weights()},
      {"bytes", plan.total_bytes()},
      {"average_bits", plan.average_bits()},
      {"error", plan.total_error()},
      {"mse", plan.total_mse()},
      {"sqnr_db", sse > 0 && signal > 0 ? nlohmann::json(10 * std::log10(signal / sse)) : nullptr}};
  return j.dump(2) + "\n";
}

void write_plan(const Plan& plan, const std::string& path) {
  std::vector<std::string> inputs;
  for (const auto& l : plan.layers) inputs.push_back(l.file);
  io::check_output_differs(path, inputs);
  const std::string text = plan_to_json(plan, fs::absolute(path).parent_path().string());
  io::AtomicFile out(path);
  out.write(std::as_bytes(std::span(text.data(), text.size())));
  out.commit();
}

Plan read_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open plan");
  const fs::path base = fs::absolute(path).parent_path();
  Plan plan;
  std::string where = path;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (!j.is_object() || j.value("format", "") != kMixedPlanFormat)
      throw Error(path + ": not a quantkit mixed-precision plan (format must be \"" + kMixedPlanFormat +
                  "\")");
    plan.objective = parse_objective(j.at("objective").get<std::string>(), path);
    plan.budget = j.at("budget").get<double>();
    plan.error_measure = j.value("error_measure", "weight-sse");
    plan.suboptimality_bound = j.value("suboptimality_bound", 0.0);
    const auto& layers = j.at("layers");
    if (!layers.is_array() || layers.empty()) throw Error(path + ": the plan lists no layers");
    std::set<std::string> names;
    for (const auto& e : layers) {
      PlanLayer l;
      l.name = e.at("name").get<std::string>();
      where = path + ": layer " + l.name;
      if (l.name.empty()) throw Error(path + ": a layer has an empty name");
      if (!names.insert(l.name).second) throw Error(where + ": listed twice");
      const fs::path file(e.at("file").get<std::string>());
      l.file = (file.is_absolute() ? file : base / file).lexically_normal().string();
      l.shape = e.at("shape").get<Shape>();
      for (const auto d : l.shape)
        if (d < 0) throw Error(where + ": negative dimension in shape");
      l.format = parse_candidate(e.at("format").get<std::string>());
      if (e.contains("bits") && e.at("bits").get<int>() != l.format.bits())
        throw Error(where + ": bits " + std::to_string(e.at("bits").get<int>()) + " contradict format " +
                    to_string(l.format));
      l.weights = static_cast<std::uint64_t>(shape_numel(l.shape));
      if (e.contains("weights") && e.at("weights").get<std::uint64_t>() != l.weights)
        throw Error(where + ": weights do not match the shape " + shape_string(l.shape));
      l.bytes = e.value("bytes", std::uint64_t{0});
      l.error = e.value("error", 0.0);
      l.mse = e.value("mse", 0.0);
      l.sqnr_db = e.contains("sqnr_db") && e.at("sqnr_db").is_number()
                      ? e.at("sqnr_db").get<double>()
                      : std::numeric_limits<double>::infinity();
      l.pinned_by = e.value("pinned_by", "");
      if (e.contains("output_sqnr_db"))  // null: an exact format
        l.output_sqnr_db = e.at("output_sqnr_db").is_number() ? e.at("output_sqnr_db").get<double>()
                                                              : std::numeric_limits<double>::infinity();
      if (!fs::exists(tensor_input_path(l.file)))
        throw Error(where + ": weight file " + tensor_input_path(l.file) + " is missing");
      const Shape stored = tensor_input_shape(l.file);  // the data is read once, by apply_plan
      if (stored != l.shape)
        throw Error(where + ": " + l.file + " has shape " + shape_string(stored) + ", the plan says " +
                    shape_string(l.shape));
      if (l.format.is_integer()) {
        Shape view;
        candidate_spec(l.format, l.shape, view);  // throws on a group size that fits nothing
      }
      plan.layers.push_back(std::move(l));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed plan: " + e.what());
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    throw Error(where + ": " + msg);
  }
  return plan;
}

namespace {

// A safetensors model's floating tensors of rank >= 2 (what a checkpoint quantizes by default), each a
// layer named by the tensor and read as MODEL:NAME.
std::vector<ManifestLayer> model_layers(const std::string& model) {
  const io::SafetensorsCheckpoint m = io::SafetensorsCheckpoint::open(model);
  std::vector<ManifestLayer> layers;
  for (const auto& e : m.tensors()) {
    const io::StTensor& t = *e.tensor;
    if (!io::st_dtype_is_float(t.dtype) || t.shape.size() < 2) continue;
    layers.push_back({t.name, model + ":" + t.name, t.shape, {}});
  }
  if (layers.empty()) throw Error(model + ": no floating tensor of rank >= 2 to plan for");
  return layers;
}

}  // namespace

std::vector<ManifestLayer> layers_from_inputs(const std::vector<std::string>& inputs) {
  if (inputs.empty())
    throw Error("no input: give a manifest.json (or its folder), .npy files, a safetensors model or an ONNX model");
  if (inputs.size() == 1 && is_safetensors_path(inputs[0])) return model_layers(inputs[0]);
  if (inputs.size() == 1 && is_onnx_path(inputs[0])) {
    // The weights quantize_onnx would quantize, read as MODEL.onnx:NAME; the plan applies by their names.
    std::vector<ManifestLayer> layers;
    for (auto& [name, shape] : onnx_weight_shapes(inputs[0])) layers.push_back({name, inputs[0] + ":" + name, shape, {}});
    return layers;
  }
  if (inputs.size() == 1 && (fs::is_directory(inputs[0]) || fs::path(inputs[0]).extension() == ".json"))
    return read_manifest(inputs[0]);
  std::vector<ManifestLayer> layers;
  std::set<std::string> names;
  for (const std::string& file : inputs) {
    if (fs::path(file).extension() != ".npy")
      throw Error(file + ": expected a .npy file or one manifest.json");
    ManifestLayer l;
    l.name = fs::path(file).stem().string();
    if (!names.insert(l.name).second) throw Error(file + ": a layer named " + l.name + " is already listed");
    l.file = file;
    l.shape = read_npy_header(file).shape;
    layers.push_back(std::move(l));
  }
  return layers;
}

std::uint64_t apply_plan(const Plan& plan, const std::string& out_dir,
                         const std::vector<std::string>& protect) {
  for (const PlanLayer& l : plan.layers)
    if (const auto m = parse_model_member(l.file))
      throw Error("layer " + l.name + ": a tensor of the safetensors model " + m->model +
                  "; a plan over a model is applied to the model, into one quantized .safetensors");
  // Every output name is known up front: check them all (distinct, none an input) before writing any.
  std::vector<std::string> inputs = protect;
  for (const auto& l : plan.layers) inputs.push_back(l.file);
  std::set<std::string> stems;
  for (const auto& l : plan.layers) {
    const std::string stem = file_stem(l.name);
    if (!stems.insert(stem).second)
      throw Error("layer " + l.name + ": its output file name " + stem + " is taken by another layer");
    const std::string ext = l.format.is_integer() ? ".npz" : ".npy";
    io::check_output_differs((fs::path(out_dir) / (stem + ext)).string(), inputs);
  }
  io::check_output_differs((fs::path(out_dir) / "manifest.json").string(), inputs);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir)) throw Error(out_dir + ": cannot create the output folder");
  nlohmann::json manifest;
  manifest["format"] = "quantkit.mixed-output/1";
  manifest["layers"] = nlohmann::json::array();
  std::uint64_t written = 0;
  for (const PlanLayer& l : plan.layers) {
    // The header only: the data is read once, by quantize_file or by the float copy below.
    const Shape stored_now = read_npy_header(l.file).shape;
    if (stored_now != l.shape)
      throw Error(l.file + ": shape " + shape_string(stored_now) + " differs from the plan's " +
                  shape_string(l.shape));
    std::string file;
    Shape stored_shape = l.shape;
    if (l.format.is_integer()) {
      file = file_stem(l.name) + ".npz";
      Shape view;
      FileQuantOptions options;
      options.spec = candidate_spec(l.format, l.shape, view);
      std::string input = l.file;
      std::string temp;
      // Groups along the rows [out, rest] are consecutive elements, as the quantized file stores groups of
      // a tensor of any rank (core/spec.hpp group_row_length): the layer keeps its own shape. Only a layer
      // whose rows hold no whole group is quantized (and stored) as the flattened view.
      bool rows_hold_groups = true;
      try {
        if (options.spec.granularity == Granularity::kPerGroup)
          (void)group_row_length(l.shape, options.spec.group_size);
      } catch (const Error&) {
        rows_hold_groups = false;
      }
      if (view != l.shape && !rows_hold_groups) {
        // Per-group over the flattened layer: the stored tensor is that view.
        // Built by append: GCC 12 warns (-Wrestrict, a false positive) on "." + std::string here.
        std::string temp_name = ".";
        temp_name += file_stem(l.name);
        temp_name += ".view.npy";
        temp = (fs::path(out_dir) / temp_name).string();
        const std::vector<float> values = io::read_npy(l.file).to_vector<float>();
        io::write_npy<float>(temp, TensorView<const float>(values.data(), view));
        input = temp;
        stored_shape = view;
      }
      try {
        written += quantize_file(input, (fs::path(out_dir) / file).string(), options).output_bytes;
      } catch (...) {
        if (!temp.empty()) fs::remove(temp, ec);
        throw;
      }
      if (!temp.empty()) fs::remove(temp, ec);
    } else {
      file = file_stem(l.name) + ".npy";
      const std::vector<float> values = io::read_npy(l.file).to_vector<float>();
      const std::string out = (fs::path(out_dir) / file).string();
      io::check_output_differs(out, {l.file});
      if (l.format.format == Format::kFloat16) {
        std::vector<half> h(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) h[i] = half(values[i]);
        io::write_npy<half>(out, TensorView<const half>(h.data(), l.shape));
      } else {
        io::write_npy<float>(out, TensorView<const float>(values.data(), l.shape));
      }
      written += fs::file_size(out);
    }
    manifest["layers"].push_back({{"name", l.name},
                                  {"file", file},
                                  {"shape", l.shape},
                                  {"stored_shape", stored_shape},
                                  {"format", to_string(l.format)}});
  }
  const std::string text = manifest.dump(2) + "\n";
  io::AtomicFile out((fs::path(out_dir) / "manifest.json").string());
  out.write(std::as_bytes(std::span(text.data(), text.size())));
  out.commit();
  return written + text.size();
}

}  // namespace qk
