// Calibration results, merging observers and held-out validation, in memory (calibration files:
// files/calibration_file.hpp).
#include "quantkit/calib/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {

template <QuantFloat T>
void accumulate_fake_quant(TensorView<const T> x, const QuantParams& params, HeldOutTensor& out) {
  using C = compute_t<T>;
  const ChannelLayout layout = channel_layout(x.shape(), params.spec);
  if (layout.slots != static_cast<std::int64_t>(params.scale.size())) {
    throw Error("held-out batch has " + std::to_string(layout.slots) + " channels/groups, the calibration " +
                std::to_string(params.scale.size()));
  }
  const QRange r = params.spec.range();
  const std::span<const T> flat = x.flat();
  for_each_slot_run(layout, 0, x.numel(), [&](std::int64_t slot, std::int64_t begin, std::int64_t len) {
    const float scale = params.scale[static_cast<std::size_t>(slot)];
    const std::int32_t zp = params.zero_point[static_cast<std::size_t>(slot)];
    const C inv = inverse_scale<C>(scale);
    for (std::int64_t i = begin; i < begin + len; ++i) {
      const C v = to_compute(flat[static_cast<std::size_t>(i)]);
      const FakeQuantResult<C> q = fake_quantize_value<C>(v, inv, scale, zp, r);
      const double e = static_cast<double>(v) - static_cast<double>(q.value);
      out.signal += static_cast<double>(v) * static_cast<double>(v);
      out.noise += e * e;
      out.clipped += q.inside ? 0 : 1;
    }
  });
  out.count += static_cast<std::uint64_t>(x.numel());
}

}  // namespace

ResultMap calibration_results(const ObserverMap& tensors) {
  ResultMap out;
  for (const auto& entry : tensors) {
    const Observer& o = entry.second;
    out.emplace(entry.first, with_error_label("tensor '" + entry.first + "'", [&] { return o.result(); }));
  }
  return out;
}

void merge_observers(ObserverMap& merged, ObserverMap part, const std::string& label) {
  for (auto& entry : part) {
    const std::string& name = entry.first;
    Observer& o = entry.second;
    auto it = merged.find(name);
    if (it == merged.end()) {
      merged.emplace(name, std::move(o));
    } else {
      with_error_label(label + ": tensor '" + name + "'", [&] { it->second.merge(o); });
    }
  }
}

bool ValidationReport::any_flagged() const {
  return std::any_of(tensors.begin(), tensors.end(), [](const TensorValidation& t) { return t.flagged; });
}

HeldOutValidation::HeldOutValidation(ObserverMap calibration, std::map<std::string, QuantParams> params,
                                     double max_mismatch)
    : calibration_(std::move(calibration)), params_(std::move(params)), max_mismatch_(max_mismatch) {
  if (!(max_mismatch >= 0.0)) throw Error("the mismatch threshold must be >= 0");
}

template <QuantFloat T>
void HeldOutValidation::observe(const std::string& name, TensorView<const T> x) {
  const auto it = calibration_.find(name);
  if (it == calibration_.end()) return mark_unknown(name);
  HeldOutTensor& h = held_[name];
  if (!h.observer) h.observer.emplace(it->second.config());
  h.observer->observe(x);  // rejects NaN/Inf and bad shapes first
  accumulate_fake_quant(x, params_.at(name), h);
}

template void HeldOutValidation::observe<half>(const std::string&, TensorView<const half>);
template void HeldOutValidation::observe<float>(const std::string&, TensorView<const float>);
template void HeldOutValidation::observe<double>(const std::string&, TensorView<const double>);

ValidationReport HeldOutValidation::report() const {
  ValidationReport report;
  report.max_mismatch = max_mismatch_;
  for (const auto& [name, h] : held_) {
    TensorValidation v;
    v.name = name;
    v.count = h.count;
    const CalibrationResult c = calibration_.at(name).result();
    const CalibrationResult t = h.observer->result();
    if (t.slots.size() != c.slots.size())
      throw Error(name + ": held-out data and calibration differ in channels");
    v.range_mismatch = -1.0;
    for (std::size_t s = 0; s < c.slots.size(); ++s) {
      const ClipRange cr = c.slots[s].clip;
      const ClipRange tr = t.slots[s].clip;
      const double width = static_cast<double>(cr.hi) - static_cast<double>(cr.lo);
      const double diff = std::max(std::fabs(static_cast<double>(tr.lo) - cr.lo),
                                   std::fabs(static_cast<double>(tr.hi) - cr.hi));
      const double m =
          width > 0.0 ? diff / width : (diff > 0.0 ? std::numeric_limits<double>::infinity() : 0.0);
      if (m > v.range_mismatch) {
        v.range_mismatch = m;
        v.worst_slot = static_cast<std::int64_t>(s);
        v.calib_range = cr;
        v.test_range = tr;
      }
    }
    v.clipped_fraction = h.count ? static_cast<double>(h.clipped) / static_cast<double>(h.count) : 0.0;
    v.sqnr_db =
        h.noise > 0.0 ? 10.0 * std::log10(h.signal / h.noise) : std::numeric_limits<double>::infinity();
    v.flagged = v.range_mismatch > max_mismatch_;
    report.tensors.push_back(v);
  }
  for (const std::string& name : unknown_) {
    TensorValidation v;
    v.name = name;
    v.calibrated = false;
    report.tensors.push_back(v);
  }
  std::sort(report.tensors.begin(), report.tensors.end(),
            [](const TensorValidation& a, const TensorValidation& b) { return a.name < b.name; });
  for (const auto& [name, _] : calibration_)
    if (!held_.count(name)) report.not_covered.push_back(name);
  return report;
}

}  // namespace qk
