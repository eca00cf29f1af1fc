// Fake quantization for training loops: PyTorch's FakeQuantize (an observer, then golden rule 6 with a
// straight-through backward) and _LearnableFakeQuantize (LSQ scale and zero-point gradients, rule 7),
// as plain objects fed float arrays. No framework: forward fills y, backward turns dy into dx (and, for
// the learnable variant, into scale / zero-point gradients the caller's optimizer applies).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/observe/minmax.hpp"
#include "quantkit/qat/learnable_fake_quant.hpp"

namespace qk {

enum class QatObserver { kMinMax, kMovingAverage };

struct FakeQuantizeConfig {
  QuantSpec spec;  // per tensor or per channel (per group works too)
  QatObserver observer = QatObserver::kMovingAverage;
  float averaging_constant = 0.01f;
  // The observer updates during the first observer_steps forward calls, then freezes (PyTorch's
  // disable_observer after N steps, the usual QAT recipe). A negative value never freezes.
  std::int64_t observer_steps = -1;
  // When false the module is the identity and passes every gradient (PyTorch's disable_fake_quant).
  bool fake_quant_enabled = true;
};

class FakeQuantize {
 public:
  explicit FakeQuantize(FakeQuantizeConfig config) : config_(std::move(config)) {
    config_.spec.validate();
    if (!(config_.averaging_constant > 0.0f && config_.averaging_constant <= 1.0f))
      throw Error("fake-quant: averaging constant must lie in (0, 1]");
  }

  // y = fake_quant(x). While the observer is enabled it first sees x and the parameters are recomputed
  // from its state (PyTorch's order); afterwards the frozen parameters are used. Remembers the
  // straight-through mask for backward.
  void forward(TensorView<const float> x, std::span<float> y) {
    if (static_cast<std::int64_t>(y.size()) != x.numel()) throw Error("fake-quant: y and x differ in size");
    // Everything that can throw happens before the step count and the mask change, so a failed call
    // leaves the module as it was (backward still refers to the last successful forward).
    std::vector<std::uint8_t> mask(y.size(), std::uint8_t{1});
    if (!config_.fake_quant_enabled) {
      reject_nonfinite<float>(x.flat(), x.shape(), "fake-quant input");
      if (observer_enabled()) update_params(x);
      std::copy(x.flat().begin(), x.flat().end(), y.begin());
    } else {
      if (observer_enabled()) update_params(x);
      if (!params_) throw Error("fake-quant: the observer is frozen before it saw any data");
      fake_quantize<float>(x, *params_, y, mask);
    }
    ++steps_;
    mask_ = std::move(mask);
  }

  // dx = dy where the last forward's rounded code lay inside [qmin, qmax], 0 elsewhere (rule 6).
  void backward(std::span<const float> dy, std::span<float> dx) const {
    if (dy.size() != mask_.size()) throw Error("fake-quant backward: dy does not match the last forward");
    fake_quantize_backward<float>(dy, mask_, dx);
  }

  bool observer_enabled() const { return config_.observer_steps < 0 || steps_ < config_.observer_steps; }
  // Freezes now (as if observer_steps had been reached).
  void freeze_observer() { config_.observer_steps = steps_; }
  void enable_fake_quant(bool on) { config_.fake_quant_enabled = on; }
  std::int64_t steps() const { return steps_; }
  const FakeQuantizeConfig& config() const { return config_; }
  bool has_params() const { return params_.has_value(); }
  const QuantParams& params() const {
    if (!params_) throw Error("fake-quant: no parameters yet (no forward call with the observer on)");
    return *params_;
  }
  std::span<const std::uint8_t> mask() const { return mask_; }

 private:
  // Observes x and recomputes the parameters; on a throw (NaN, a shape that does not match) the observer
  // state is unchanged, as the observers validate before they update.
  void update_params(TensorView<const float> x) {
    if (config_.observer == QatObserver::kMinMax) {
      if (!minmax_) minmax_.emplace(config_.spec);
      minmax_->observe<float>(x);
      params_ = minmax_->qparams();
    } else {
      if (!moving_) moving_.emplace(config_.spec, config_.averaging_constant);
      moving_->observe<float>(x);
      params_ = moving_->qparams();
    }
  }

  FakeQuantizeConfig config_;
  std::int64_t steps_ = 0;
  std::optional<MinMaxObserver> minmax_;
  std::optional<MovingAverageMinMaxObserver> moving_;
  std::optional<QuantParams> params_;
  std::vector<std::uint8_t> mask_;
};

// LSQ: the scale (and, for affine specs, the zero point) are trained parameters. They start from a
// min/max observer's parameters on the first forward call (or from init()). backward() returns dx and
// accumulates the scale / zero-point gradients, scaled by 1/sqrt(N * qmax) (LSQ's gradient scale).
class LearnableFakeQuantize {
 public:
  explicit LearnableFakeQuantize(QuantSpec spec, bool learn_zero_point = false)
      : spec_(std::move(spec)), learn_zero_point_(learn_zero_point) {
    spec_.validate();
    if (spec_.granularity == Granularity::kPerGroup)
      throw Error("learnable fake-quant: per-group parameters are not supported (per tensor or per channel)");
  }

  void init(std::vector<float> scale, std::vector<float> zero_point) {
    if (scale.size() != zero_point.size() || scale.empty())
      throw Error("learnable fake-quant: init needs one scale and one zero point per slot");
    for (const float s : scale) check_scale(s, "learnable scale");
    scale_ = std::move(scale);
    zero_point_ = std::move(zero_point);
    grad_scale_.assign(scale_.size(), 0.0f);
    grad_zero_point_.assign(scale_.size(), 0.0f);
  }

  void forward(TensorView<const float> x, std::span<float> y) {
    if (static_cast<std::int64_t>(y.size()) != x.numel()) throw Error("fake-quant: y and x differ in size");
    reject_nonfinite<float>(x.flat(), x.shape(), "learnable fake-quant input");
    const ChannelLayout layout = channel_layout(x.shape(), spec_);
    if (scale_.empty()) {
      const QuantParams p = kernels::choose_qparams<float>(x, spec_);
      init(p.scale, std::vector<float>(p.zero_point.begin(), p.zero_point.end()));
    }
    fake_quantize_learnable_forward(x.flat(), layout, scale_, zero_point_, spec_.range(), y);
    last_x_.assign(x.flat().begin(), x.flat().end());
    last_shape_ = x.shape();
  }

  // dx for the last forward's input; adds to scale_grad() / zero_point_grad().
  void backward(std::span<const float> dy, std::span<float> dx) {
    if (dy.size() != last_x_.size() || dx.size() != dy.size())
      throw Error("learnable fake-quant backward: dy does not match the last forward");
    const ChannelLayout layout = channel_layout(last_shape_, spec_);
    const float g = lsq_grad_factor(layout.slots > 0 ? layout.numel / layout.slots : 1, spec_.range());
    const LearnableFakeQuantGrads grads =
        fake_quantize_learnable_backward(last_x_, dy, layout, scale_, zero_point_, spec_.range(), g,
                                         spec_.granularity == Granularity::kPerChannel);
    std::copy(grads.dx.begin(), grads.dx.end(), dx.begin());
    for (std::size_t c = 0; c < scale_.size(); ++c) {
      grad_scale_[c] += grads.dscale[c];
      if (learn_zero_point_) grad_zero_point_[c] += grads.dzero_point[c];
    }
  }

  // Plain SGD on the parameters, then the gradients are cleared. The scale is kept at or above the
  // observer floor (rule 2's eps), the zero point inside [qmin, qmax].
  void sgd_step(float learning_rate) {
    const QRange r = spec_.range();
    for (std::size_t c = 0; c < scale_.size(); ++c) {
      scale_[c] = std::max(sgd_update(scale_[c], learning_rate, grad_scale_[c]), kScaleEps);
      zero_point_[c] = std::clamp(sgd_update(zero_point_[c], learning_rate, grad_zero_point_[c]),
                                  static_cast<float>(r.min), static_cast<float>(r.max));
    }
    zero_grad();
  }
  void zero_grad() {
    std::fill(grad_scale_.begin(), grad_scale_.end(), 0.0f);
    std::fill(grad_zero_point_.begin(), grad_zero_point_.end(), 0.0f);
  }

  const QuantSpec& spec() const { return spec_; }
  std::span<const float> scale() const { return scale_; }
  std::span<const float> zero_point() const { return zero_point_; }
  std::span<const float> scale_grad() const { return grad_scale_; }
  std::span<const float> zero_point_grad() const { return grad_zero_point_; }

 private:
  QuantSpec spec_;
  bool learn_zero_point_;
  std::vector<float> scale_, zero_point_, grad_scale_, grad_zero_point_;
  std::vector<float> last_x_;
  Shape last_shape_;
};

}  // namespace qk
