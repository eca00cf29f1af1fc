// Calibration over .npy/.npz files, the calib.json format, merging and validation of saved files.
#include "quantkit/files/calibration_file.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "../io/spec_json.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"

namespace qk {

namespace {

using nlohmann::json;

constexpr const char* kFormat = "quantkit-calibration";
constexpr int kVersion = 1;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Calls f(name, label, array) for every array of the inputs, one array in memory at a time.
template <class F>
void for_each_array(const std::vector<std::string>& inputs, const ProgressFn& progress, F&& f) {
  if (inputs.empty()) throw Error("no inputs given");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string& input = inputs[i];
    const auto equals = input.find('=');
    if (equals != std::string::npos && equals > 0 && ends_with(input, ".npy")) {
      // NAME=FILE.npy: the array is a batch of tensor NAME, whatever the file is called (batches dumped
      // as act_0.npy, act_1.npy, ... become one tensor).
      const std::string path = input.substr(equals + 1);
      const io::NpyArray a = io::read_npy(path);
      f(input.substr(0, equals), path, a);
    } else if (ends_with(input, ".npy")) {
      const io::NpyArray a = io::read_npy(input);
      f(std::filesystem::path(input).stem().string(), input, a);
    } else if (ends_with(input, ".npz")) {
      const std::vector<std::string> names = io::npz_names(input);
      if (names.empty()) throw Error(input + ": archive holds no arrays");
      for (const std::string& key : names) {
        const io::NpyArray a = io::read_npz_member(input, key);
        f(key, input + ":" + key, a);
      }
    } else if (const auto colon = input.rfind(':');
               colon != std::string::npos && ends_with(input.substr(0, colon), ".npz")) {
      const std::string path = input.substr(0, colon);
      const std::string key = input.substr(colon + 1);
      const io::NpyArray a = io::read_npz_member(path, key);
      f(key, input, a);
    } else {
      throw Error(input + ": not a .npy file, NAME=FILE.npy, a .npz archive or ARCHIVE.npz:KEY");
    }
    if (progress) progress(static_cast<double>(i + 1) / static_cast<double>(inputs.size()));
  }
}

// Calls f(TensorView<const T>) with the array's data as float16, float32 or float64.
template <class F>
void with_float_view(const io::NpyArray& a, F&& f) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    if (a.is_native_c_order()) {
      f(a.view<T>());
    } else {
      const std::vector<T> v = a.to_vector<T>();
      f(TensorView<const T>(v.data(), a.shape()));
    }
  };
  switch (a.dtype()) {
    case io::DType::kFloat16:
      run(half{});
      break;
    case io::DType::kFloat32:
      run(float{});
      break;
    case io::DType::kFloat64:
      run(double{});
      break;
    default:
      throw Error(std::string("dtype ") + io::dtype_name(a.dtype()) +
                  " is not a float type (calibration reads float16, float32 or float64)");
  }
}

// --- JSON ------------------------------------------------------------------------------------------------

// calib.json's spec: the shared spec fields (io/qfile.cpp's meta spells them the same way), the bits the
// range needs, and the range as requested when it was given explicitly.
json spec_to_json(const QuantSpec& s) {
  json j;
  io::detail::write_spec_fields(j, s, s.range());
  j["bits"] = s.storage_bits();
  if (s.has_explicit_range()) {
    j["requested_quant_min"] = *s.quant_min;
    j["requested_quant_max"] = *s.quant_max;
  }
  return j;
}

QuantSpec spec_from_json(const json& j) {
  QuantSpec s;
  io::detail::read_spec_fields(j, s, "", "spec", /*name_unknown_values_in_what=*/false);
  s.reduce_range = j.at("reduce_range").get<bool>();
  if (j.contains("requested_quant_min")) {
    s.quant_min = io::detail::integer_field<std::int64_t>(j, "requested_quant_min", "", "spec");
    s.quant_max = io::detail::integer_field<std::int64_t>(j, "requested_quant_max", "", "spec");
  } else {
    s.bits = io::detail::integer_field<int>(j, "bits", "", "spec");
  }
  s.validate();
  const QRange r = s.range();
  if (io::detail::integer_field<std::int64_t>(j, "quant_min", "", "spec") != r.min ||
      io::detail::integer_field<std::int64_t>(j, "quant_max", "", "spec") != r.max)
    throw Error("spec's quant_min/quant_max disagree with its bits and flags");
  return s;
}

json histogram_to_json(const Histogram& h) {
  json bins = json::array();
  const auto counts = h.counts();
  for (std::size_t k = 0; k < counts.size(); ++k)
    if (counts[k] != 0) bins.push_back({k, counts[k]});
  return {
      {"min", h.min()}, {"max", h.max()}, {"exponent", h.exponent()}, {"first", h.first()}, {"counts", bins}};
}

Histogram histogram_from_json(const json& j, int bins) {
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(bins), 0);
  for (const json& pair : j.at("counts")) {
    const auto k = pair.at(0).get<std::int64_t>();
    if (k < 0 || k >= bins) throw Error("histogram bin index out of range");
    counts[static_cast<std::size_t>(k)] = pair.at(1).get<std::uint64_t>();
  }
  return Histogram::from_state(bins, j.at("min").get<float>(), j.at("max").get<float>(),
                               j.at("exponent").get<int>(), j.at("first").get<std::int64_t>(),
                               std::move(counts));
}

// PyTorch's histogram (histogram method): float32 counts, sparse as [bin, count] pairs like the above.
json torch_histogram_to_json(const TorchHistogram& h) {
  json bins = json::array();
  const auto counts = h.counts();
  for (std::size_t k = 0; k < counts.size(); ++k)
    if (counts[k] != 0.0f) bins.push_back({k, counts[k]});
  return {{"min", h.min()}, {"max", h.max()}, {"upsample_rate", h.upsample_rate()}, {"counts", bins}};
}

TorchHistogram torch_histogram_from_json(const json& j, int bins) {
  std::vector<float> counts(static_cast<std::size_t>(bins), 0.0f);
  for (const json& pair : j.at("counts")) {
    const auto k = pair.at(0).get<std::int64_t>();
    if (k < 0 || k >= bins) throw Error("torch histogram bin index out of range");
    counts[static_cast<std::size_t>(k)] = pair.at(1).get<float>();
  }
  return TorchHistogram::from_state(bins, j.at("upsample_rate").get<int>(), j.at("min").get<float>(),
                                    j.at("max").get<float>(), std::move(counts));
}

json tensor_to_json(const Observer& o, const CalibrationResult& r, bool with_state) {
  const ObserverConfig& c = o.config();
  json j;
  j["method"] = to_string(c.method);
  if (c.method == CalibMethod::kPercentile) j["percentile"] = c.percentile;
  if (c.method == CalibMethod::kMovingAverage) j["averaging_constant"] = c.averaging_constant;
  j["bins"] = c.bins;
  j["spec"] = spec_to_json(c.spec);
  j["shape"] = r.shape;
  j["batches"] = r.batches;
  j["count"] = r.count;
  json mn = json::array(), mx = json::array(), lo = json::array(), hi = json::array(), sc = json::array(),
       zp = json::array(), cf = json::array(), bw = json::array();
  for (const SlotCalibration& s : r.slots) {
    mn.push_back(s.min);
    mx.push_back(s.max);
    lo.push_back(s.clip.lo);
    hi.push_back(s.clip.hi);
    sc.push_back(s.scale);
    zp.push_back(s.zero_point);
    cf.push_back(s.clipped_fraction);
    bw.push_back(s.bin_width);
  }
  j["min"] = mn;
  j["max"] = mx;
  j["clip_min"] = lo;
  j["clip_max"] = hi;
  j["scale"] = sc;
  j["zero_point"] = zp;
  j["clipped_fraction"] = r.clipped_fraction;
  j["clipped_fraction_per_slot"] = cf;
  j["bin_width"] = bw;
  if (with_state) {
    const ObserverState& s = o.state();
    json st;
    st["min"] = s.min;
    st["max"] = s.max;
    if (c.method == CalibMethod::kMovingAverage) {
      st["avg_min"] = s.avg_min;
      st["avg_max"] = s.avg_max;
    }
    json hs = json::array();
    for (const Histogram& h : s.histograms) hs.push_back(histogram_to_json(h));
    st["histograms"] = hs;
    if (c.method == CalibMethod::kHistogram) {
      json ths = json::array();
      for (const TorchHistogram& h : s.torch_histograms) ths.push_back(torch_histogram_to_json(h));
      st["torch_histograms"] = ths;
    }
    j["state"] = st;
  }
  return j;
}

ObserverConfig config_from_json(const json& j) {
  ObserverConfig c;
  c.method = parse_calib_method(j.at("method").get<std::string>());
  if (j.contains("percentile")) c.percentile = j.at("percentile").get<double>();
  if (j.contains("averaging_constant")) c.averaging_constant = j.at("averaging_constant").get<float>();
  c.bins = j.at("bins").get<int>();
  c.spec = spec_from_json(j.at("spec"));
  c.validate();
  return c;
}

Observer tensor_from_json(const json& j) {
  ObserverState s;
  s.config = config_from_json(j);
  s.shape = j.at("shape").get<Shape>();
  s.batches = j.at("batches").get<std::int64_t>();
  if (!j.contains("state")) throw Error("no observer state stored (was it written with state?)");
  const json& st = j.at("state");
  s.min = st.at("min").get<std::vector<float>>();
  s.max = st.at("max").get<std::vector<float>>();
  if (s.config.method == CalibMethod::kMovingAverage) {
    s.avg_min = st.at("avg_min").get<std::vector<float>>();
    s.avg_max = st.at("avg_max").get<std::vector<float>>();
  }
  for (const json& h : st.at("histograms")) s.histograms.push_back(histogram_from_json(h, s.config.bins));
  if (s.config.method == CalibMethod::kHistogram) {
    for (const json& h : st.at("torch_histograms"))
      s.torch_histograms.push_back(torch_histogram_from_json(h, s.config.bins));
  }
  return Observer::from_state(std::move(s));
}

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open calibration file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object() || j.value("format", "") != kFormat)
    throw Error(path + ": not a quantkit calibration file");
  if (j.value("version", 0) != kVersion)
    throw Error(path + ": calibration format version " + std::to_string(j.value("version", 0)) +
                " is not supported");
  if (!j.contains("tensors") || !j.at("tensors").is_object())
    throw Error(path + ": calibration file has no tensors");
  return j;
}

// Runs f, turning JSON type/shape errors into one message naming the file and the tensor.
template <class F>
auto parse_tensor(const std::string& path, const std::string& name, F&& f) {
  try {
    return f();
  } catch (const json::exception& e) {
    throw Error(path + ": tensor '" + name + "': malformed entry (" + e.what() + ")");
  } catch (const Error& e) {
    throw Error(path + ": tensor '" + name + "': " + e.what());
  }
}

StoredParams stored_params_from_json(const json& t) {
  StoredParams out;
  out.method = parse_calib_method(t.at("method").get<std::string>());
  out.shape = t.at("shape").get<Shape>();
  out.params.spec = spec_from_json(t.at("spec"));
  out.params.scale = t.at("scale").get<std::vector<float>>();
  out.params.zero_point = t.at("zero_point").get<std::vector<std::int32_t>>();
  check_params(out.params, channel_layout(out.shape, out.params.spec));
  return out;
}

}  // namespace

ObserverMap calibrate_files(const std::vector<std::string>& inputs, const ObserverConfig& config,
                            const ProgressFn& progress) {
  config.validate();
  ObserverMap observers;
  for_each_array(inputs, progress,
                 [&](const std::string& name, const std::string& label, const io::NpyArray& a) {
                   with_error_label(label, [&] {
                     Observer& o = observers.try_emplace(name, config).first->second;
                     with_float_view(a, [&](auto view) { o.observe(view); });
                   });
                 });
  return observers;
}

std::string calibration_json(const ObserverMap& tensors, const ResultMap& results,
                             const CalibrationFileInfo& info, bool with_state) {
  json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["preset"] = info.preset.empty() ? json(nullptr) : json(info.preset);
  j["dynamic_activations"] = info.dynamic_activations;
  json ts = json::object();
  for (const auto& entry : tensors)
    ts[entry.first] = tensor_to_json(entry.second, results.at(entry.first), with_state);
  j["tensors"] = ts;
  return j.dump(1) + "\n";
}

void write_calibration(const std::string& path, const ObserverMap& tensors, const ResultMap& results,
                       const CalibrationFileInfo& info) {
  if (tensors.empty()) throw Error(path + ": nothing to write (no tensors were calibrated)");
  const std::string text = calibration_json(tensors, results, info, /*with_state=*/true);
  io::AtomicFile file(path);
  file.write(std::as_bytes(std::span(text.data(), text.size())));
  file.commit();
}

static ObserverMap observers_from_json(const std::string& path, const json& j, CalibrationFileInfo* info) {
  if (info) {
    info->preset = j.value("preset", json(nullptr)).is_string() ? j.at("preset").get<std::string>() : "";
    info->dynamic_activations = j.value("dynamic_activations", false);
  }
  ObserverMap out;
  for (const auto& item : j.at("tensors").items()) {
    const json& t = item.value();
    out.emplace(item.key(), parse_tensor(path, item.key(), [&] { return tensor_from_json(t); }));
  }
  return out;
}

ObserverMap read_calibration(const std::string& path, CalibrationFileInfo* info) {
  return observers_from_json(path, read_json_file(path), info);
}

ObserverMap merge_calibrations(const std::vector<std::string>& paths, CalibrationFileInfo* info) {
  if (paths.empty()) throw Error("no calibration files to merge");
  ObserverMap merged;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    CalibrationFileInfo this_info;
    ObserverMap part = read_calibration(paths[i], &this_info);
    if (info && i == 0) *info = this_info;
    if (info && (this_info.preset != info->preset)) info->preset.clear();
    merge_observers(merged, std::move(part), paths[i]);
  }
  return merged;
}

StoredParams read_calibrated_params(const std::string& path, const std::string& tensor) {
  const json j = read_json_file(path);
  const json& ts = j.at("tensors");
  if (!ts.contains(tensor)) {
    std::string names;
    int shown = 0;
    for (const auto& [name, _] : ts.items()) {
      if (shown++ == 8) {
        names += ", ...";
        break;
      }
      names += (names.empty() ? "" : ", ") + name;
    }
    throw Error(path + ": no tensor '" + tensor + "' (it has " + names + ")");
  }
  const json& t = ts.at(tensor);
  return parse_tensor(path, tensor, [&] { return stored_params_from_json(t); });
}

ValidationReport validate_calibration(const std::string& calib_path, const std::vector<std::string>& inputs,
                                      double max_mismatch, const ProgressFn& progress) {
  if (!(max_mismatch >= 0.0)) throw Error("the mismatch threshold must be >= 0");
  const json file = read_json_file(calib_path);
  ObserverMap calib = observers_from_json(calib_path, file, nullptr);
  std::map<std::string, QuantParams> params;
  for (const auto& item : file.at("tensors").items()) {
    const json& t = item.value();
    params.emplace(item.key(),
                   parse_tensor(calib_path, item.key(), [&] { return stored_params_from_json(t).params; }));
  }

  HeldOutValidation validation(std::move(calib), std::move(params), max_mismatch);
  for_each_array(
      inputs, progress, [&](const std::string& name, const std::string& label, const io::NpyArray& a) {
        // A tensor the calibration does not know is listed, not read (any dtype).
        if (!validation.knows(name)) return validation.mark_unknown(name);
        with_error_label(label,
                         [&] { with_float_view(a, [&](auto view) { validation.observe(name, view); }); });
      });
  return validation.report();
}

}  // namespace qk
