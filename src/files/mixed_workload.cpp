// Layers of a mixed-precision run from files (files/mixed_workload.hpp).
#include "quantkit/files/mixed_workload.hpp"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "quantkit/core/error.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/mixed/budget.hpp"
#include "quantkit/mixed/output_error.hpp"
#include "quantkit/mixed/plan.hpp"

namespace qk {

namespace {

// The Gram matrix of one layer's activations, checked against the layer's input width.
std::vector<double> activation_gram(const WeightLayer& layer, const std::string& file) {
  const std::string where = "layer " + layer.name + ": activations " + file;
  const io::NpyArray x = io::read_npy(file);
  if (layer.shape.size() < 2 || layer.shape[0] <= 0)
    throw Error(where + ": the layer's shape " + shape_string(layer.shape) +
                " has no input features (activations need a weight of rank >= 2)");
  const std::int64_t in = shape_numel(layer.shape) / layer.shape[0];
  if (x.shape().size() < 2 || x.shape().back() != in)
    throw Error(where + " have shape " + shape_string(x.shape()) + ", expected (rows, " + std::to_string(in) +
                ") (" + std::to_string(in) + " = prod(shape[1:]) of the layer's " +
                shape_string(layer.shape) + ")");
  const std::vector<float> values = x.to_vector<float>();
  reject_nonfinite<float>(values, x.shape(), file);
  return input_gram(values, in);
}

}  // namespace

ActivationFile parse_activation_file(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw Error("bad activations '" + text + "': expected LAYER=FILE.npy, e.g. 'k_proj=acts/attn_in.npy'");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

bool MixedWorkload::has_activations() const {
  for (const auto& g : grams)
    if (!g.empty()) return true;
  return false;
}

MixedWorkload open_mixed_workload(const std::vector<std::string>& inputs, const std::string& output,
                                  const std::vector<ActivationFile>& acts) {
  const std::vector<ManifestLayer> listed = layers_from_inputs(inputs);
  MixedWorkload w;
  w.protect = inputs;
  if (inputs.size() == 1 && std::filesystem::is_directory(inputs[0]))
    w.protect.push_back((std::filesystem::path(inputs[0]) / "manifest.json").string());
  w.activation_files.resize(listed.size());
  for (std::size_t i = 0; i < listed.size(); ++i) w.activation_files[i] = listed[i].acts;
  for (const ActivationFile& a : acts) {
    std::size_t i = 0;
    while (i < listed.size() && listed[i].name != a.layer) ++i;
    if (i == listed.size()) throw Error("activations " + a.file + ": no layer is named " + a.layer);
    if (!w.activation_files[i].empty())
      throw Error("layer " + a.layer + ": activations given twice (" + w.activation_files[i] + " and " +
                  a.file + ")");
    w.activation_files[i] = a.file;
  }
  for (const auto& f : listed) w.protect.push_back(f.file);
  for (const auto& f : w.activation_files)
    if (!f.empty()) w.protect.push_back(f);
  if (!output.empty()) io::check_output_differs(output, w.protect);
  w.loaded = load_layers(listed);
  w.grams.resize(listed.size());
  for (std::size_t i = 0; i < listed.size(); ++i) {
    reject_nonfinite<float>(w.loaded[i].values, w.loaded[i].shape, listed[i].file);
    if (!w.activation_files[i].empty()) w.grams[i] = activation_gram(w.loaded[i], w.activation_files[i]);
  }
  for (std::size_t i = 0; i < listed.size(); ++i) {
    w.layers.push_back({w.loaded[i].name, w.loaded[i].shape, w.loaded[i].values, w.grams[i]});
    w.total_weights += w.loaded[i].values.size();
    w.files.push_back(listed[i].file);
  }
  return w;
}

std::string mixed_report_json(const MixedReport& report) {
  const std::vector<LayerSensitivity>& sens = *report.layers;
  const bool mse = report.error_measure == "weight-sse";
  const double n = static_cast<double>(total_weights(sens));  // MSE = summed squared error / n
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j;
  j["weights"] = total_weights(sens);
  j["error_measure"] = report.error_measure;
  j["layers"] = nlohmann::json::array();
  for (const auto& l : sens) {
    nlohmann::json cands = nlohmann::json::array();
    for (const auto& o : l.options) {
      cands.push_back({{"format", to_string(o.format)},
                       {"bytes", o.bytes},
                       {"error", o.error},
                       {"mse", o.weight_error.mse},
                       {"sqnr_db", number(o.weight_error.sqnr_db)}});
      if (l.has_activations) cands.back()["output_sqnr_db"] = number(output_sqnr_db(l, o));
    }
    j["layers"].push_back({{"name", l.name},
                           {"shape", l.shape},
                           {"weights", l.weights},
                           {"pinned_by", l.pinned_by},
                           {"candidates", cands}});
  }
  j["tradeoff"] = nlohmann::json::array();
  for (const auto& p : report.curve) {
    j["tradeoff"].push_back({{"average_bits", p.average_bits}, {"bytes", p.bytes}, {"error", p.error}});
    if (mse) j["tradeoff"].back()["mse"] = p.error / n;
  }
  j["uniform"] = nlohmann::json::array();
  for (const auto& [name, s] : report.uniform) {
    nlohmann::json u = {
        {"name", name}, {"average_bits", s.average_bits}, {"bytes", s.bytes}, {"error", s.error}};
    if (mse) u["mse"] = s.error / n;
    if (report.solver_budget) u["fits_budget"] = fits_budget(s, *report.solver_budget);
    j["uniform"].push_back(u);
  }
  if (report.plan) j["plan"] = nlohmann::json::parse(plan_to_json(*report.plan));
  return j.dump();
}

}  // namespace qk
