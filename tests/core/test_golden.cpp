// Every golden case (tests/data/golden, copied from the shared reference vectors) through the library API.
// One parameterised test; an unknown op fails, so a new case is never skipped silently.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "golden_case.hpp"
#include "kernels/linear_dynamic_ref.hpp"
#include "quantkit/embed/rowwise.hpp"
#include "quantkit/kernels/gemm.hpp"
#include "quantkit/observe/minmax.hpp"
#include "quantkit/observe/observer.hpp"
#include "quantkit/qat/learnable_fake_quant.hpp"
#include "quantkit/quantkit.hpp"

namespace qk::test {
namespace {

using nlohmann::json;

Granularity granularity_of(const json& qspec) {
  return qspec.at("granularity").get<std::string>() == "per_channel" ? Granularity::kPerChannel
                                                                     : Granularity::kPerTensor;
}

// Observers: the range the reference was asked for (rule 1); checks that we derive the same effective range.
QuantSpec observer_spec(const json& qspec) {
  QuantSpec spec;
  spec.is_signed = qspec.at("signed").get<bool>();
  spec.reduce_range = qspec.at("reduce_range").get<bool>();
  spec.scheme = qspec.at("scheme").get<std::string>() == "affine" ? Scheme::kAffine : Scheme::kSymmetric;
  spec.granularity = granularity_of(qspec);
  if (!qspec.at("axis").is_null()) spec.axis = qspec.at("axis").get<int>();
  if (qspec.contains("requested_quant_min")) {
    spec.quant_min = qspec.at("requested_quant_min").get<std::int64_t>();
    spec.quant_max = qspec.at("requested_quant_max").get<std::int64_t>();
  }
  return spec;
}

// Quantize / fake-quant / dequantize: the effective range is given directly.
QuantSpec range_spec(const json& qspec) {
  QuantSpec spec;
  spec.quant_min = qspec.at("quant_min").get<std::int64_t>();
  spec.quant_max = qspec.at("quant_max").get<std::int64_t>();
  spec.is_signed = qspec.contains("signed") ? qspec.at("signed").get<bool>() : *spec.quant_min < 0;
  spec.scheme = qspec.contains("scheme") && qspec.at("scheme").get<std::string>() == "symmetric"
                    ? Scheme::kSymmetric
                    : Scheme::kAffine;
  spec.granularity = granularity_of(qspec);
  if (!qspec.at("axis").is_null()) spec.axis = qspec.at("axis").get<int>();
  return spec;
}

float scale_from_params(const json& params) {
  // The bit pattern is authoritative; cases without one give the shortest round-tripping double.
  if (!params.contains("scale_f32_hex")) return static_cast<float>(params.at("scale").get<double>());
  const auto bits =
      static_cast<std::uint32_t>(std::stoul(params.at("scale_f32_hex").get<std::string>(), nullptr, 16));
  return std::bit_cast<float>(bits);
}

// Per-tensor params from case.json, or per-channel params from the scale / zero_point inputs.
QuantParams case_params(const GoldenCase& c, const QuantSpec& spec) {
  if (spec.granularity == Granularity::kPerTensor) {
    return {spec, {scale_from_params(c.params())}, {c.params().at("zero_point").get<std::int32_t>()}};
  }
  const auto zp = c.input<std::int64_t>("zero_point");
  return {spec, c.input<float>("scale"), std::vector<std::int32_t>(zp.begin(), zp.end())};
}

template <class T>
std::vector<T> as(const std::vector<std::int64_t>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// x stacked on a leading batch axis: one view per batch.
std::vector<TensorView<const float>> batches(const io::NpyArray& x, const std::vector<float>& data,
                                             int count) {
  std::vector<TensorView<const float>> out;
  if (count <= 1) {
    out.emplace_back(data.data(), x.shape());
    return out;
  }
  const Shape inner(x.shape().begin() + 1, x.shape().end());
  const std::int64_t n = shape_numel(inner);
  for (int b = 0; b < count; ++b) out.emplace_back(data.data() + b * n, inner);
  return out;
}

void run_observer_minmax(const GoldenCase& c) {
  const QuantSpec spec = observer_spec(c.params().at("qspec"));
  const json& qspec = c.params().at("qspec");
  if (c.conformance() == "informational") {
    // Bad settings and non-finite input: quantkit refuses with an error where the reference misbehaves.
    const auto x = c.input<float>("x");
    EXPECT_THROW(
        {
          MinMaxObserver obs(spec);
          obs.observe<float>(TensorView<const float>(x.data(), c.input_array("x").shape()));
          obs.qparams();
        },
        Error);
    c.count_check();
    return;
  }
  EXPECT_EQ(spec.range(),
            (QRange{qspec.at("quant_min").get<std::int64_t>(), qspec.at("quant_max").get<std::int64_t>()}));
  const auto xa = c.input_array("x");
  const auto x = xa.to_vector<float>();
  MinMaxObserver obs(spec);
  for (const auto& batch : batches(xa, x, c.params().at("batches").get<int>())) obs.observe<float>(batch);
  const QuantParams p = obs.qparams();
  c.expect("min_val", std::vector<float>(obs.min_vals().begin(), obs.min_vals().end()));
  c.expect("max_val", std::vector<float>(obs.max_vals().begin(), obs.max_vals().end()));
  c.expect("scale", p.scale);
  c.expect("zero_point", std::vector<std::int64_t>(p.zero_point.begin(), p.zero_point.end()));

  // The calibration observer (observe/observer.hpp) must give the same numbers.
  Observer general(ObserverConfig{CalibMethod::kMinMax, spec});
  for (const auto& batch : batches(xa, x, c.params().at("batches").get<int>())) general.observe<float>(batch);
  const CalibrationResult r = general.result();
  c.expect("scale", r.params.scale);
  c.expect("zero_point", std::vector<std::int64_t>(r.params.zero_point.begin(), r.params.zero_point.end()));
}

void run_observer_moving_average(const GoldenCase& c) {
  const QuantSpec spec = observer_spec(c.params().at("qspec"));
  const auto c_bits = static_cast<std::uint32_t>(
      std::stoul(c.params().at("averaging_constant_f32_hex").get<std::string>(), nullptr, 16));
  MovingAverageMinMaxObserver obs(spec, std::bit_cast<float>(c_bits));
  const auto xa = c.input_array("x");
  const auto x = xa.to_vector<float>();
  std::vector<float> mins, maxs;
  for (const auto& batch : batches(xa, x, c.params().at("batches").get<int>())) {
    obs.observe<float>(batch);
    mins.insert(mins.end(), obs.min_vals().begin(), obs.min_vals().end());
    maxs.insert(maxs.end(), obs.max_vals().begin(), obs.max_vals().end());
  }
  const QuantParams p = obs.qparams();
  c.expect("min_val_per_step", mins);
  c.expect("max_val_per_step", maxs);
  c.expect("scale", p.scale);
  c.expect("zero_point", std::vector<std::int64_t>(p.zero_point.begin(), p.zero_point.end()));

  // The calibration observer's moving-average method, step by step.
  ObserverConfig config{CalibMethod::kMovingAverage, spec};
  config.averaging_constant = std::bit_cast<float>(c_bits);
  Observer general(config);
  std::vector<float> gmins, gmaxs;
  for (const auto& batch : batches(xa, x, c.params().at("batches").get<int>())) {
    general.observe<float>(batch);
    for (const SlotCalibration& s : general.result().slots) {
      gmins.push_back(s.min);
      gmaxs.push_back(s.max);
    }
  }
  c.expect("min_val_per_step", gmins);
  c.expect("max_val_per_step", gmaxs);
  const CalibrationResult r = general.result();
  c.expect("scale", r.params.scale);
  c.expect("zero_point", std::vector<std::int64_t>(r.params.zero_point.begin(), r.params.zero_point.end()));
}

// PyTorch's HistogramObserver. The case is informational, but the histogram method mirrors torch's
// float32 arithmetic, so its histogram, range, scale and zero point are checked bit for bit. Our mse
// observer (a different, mergeable error model) must quantize the same data with no more error than the
// reference's scale and zero point, up to 2% slack.
void run_observer_histogram(const GoldenCase& c) {
  const QuantSpec spec = observer_spec(c.params().at("qspec"));
  ASSERT_EQ(c.params().at("bins").get<int>(), Histogram::kDefaultBins);
  ASSERT_EQ(c.params().at("upsample_rate").get<int>(), TorchHistogram::kDefaultUpsampleRate);
  const auto xa = c.input_array("x");
  const auto x = xa.to_vector<float>();
  const TensorView<const float> view(x.data(), xa.shape());

  Observer torch_obs(ObserverConfig{CalibMethod::kHistogram, spec});
  torch_obs.observe<float>(view);
  const TorchHistogram& h = torch_obs.state().torch_histograms.at(0);
  c.expect_as("min_val", std::vector<float>{h.min()}, "exact");
  c.expect_as("max_val", std::vector<float>{h.max()}, "exact");
  c.expect_as("histogram", std::vector<float>(h.counts().begin(), h.counts().end()), "exact");
  const QuantParams torch_params = torch_obs.result().params;
  c.expect_as("scale", torch_params.scale, "exact");
  c.expect_as("zero_point",
              std::vector<std::int64_t>(torch_params.zero_point.begin(), torch_params.zero_point.end()),
              "exact");

  Observer obs(ObserverConfig{CalibMethod::kMse, spec});
  obs.observe<float>(view);
  const QuantParams ours = obs.result().params;
  const auto ref_scale = c.expected_array("scale").to_vector<float>();
  const auto ref_zp = c.expected_array("zero_point").to_vector<std::int32_t>();
  const QuantParams ref{spec, ref_scale, ref_zp};
  auto mse = [&](const QuantParams& p) {
    std::vector<float> y(x.size());
    fake_quantize<float>(view, p, y);
    double s = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) s += (double{x[i]} - y[i]) * (double{x[i]} - y[i]);
    return s / static_cast<double>(x.size());
  };
  EXPECT_LE(mse(ours), 1.02 * mse(ref)) << "ours: scale " << ours.scale[0] << " zp " << ours.zero_point[0]
                                        << ", reference: scale " << ref_scale[0] << " zp " << ref_zp[0];
  c.count_check();
}

void run_dynamic_qparams(const GoldenCase& c) {
  const json& qspec = c.params().at("qspec");
  const auto x = c.input<float>("x");
  const float lo = *std::min_element(x.begin(), x.end());
  const float hi = *std::max_element(x.begin(), x.end());
  const DynamicQParams p =
      choose_qparams_dynamic(lo, hi, qspec.at("signed").get<bool>(), qspec.at("reduce_range").get<bool>());
  c.expect("scale_f64", std::vector<double>{p.scale_f64});
  c.expect("scale", std::vector<float>{p.scale});
  c.expect("zero_point", std::vector<std::int64_t>{p.zero_point});
  // Codes use the full storage range (rule 4), whatever reduce_range did to the parameters.
  const QRange storage = dynamic_range(qspec.at("signed").get<bool>(), false);
  std::vector<std::int64_t> q(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    q[i] = quantize_value<float>(x[i], inverse_scale<float>(p.scale), p.zero_point, storage);
  c.expect("q", q);
}

void run_quantize(const GoldenCase& c) {
  const QuantSpec spec = range_spec(c.params().at("qspec"));
  const auto xa = c.input_array("x");
  const auto x = xa.to_vector<float>();
  const TensorView<const float> view(x.data(), xa.shape());
  if (c.conformance() == "informational") {  // NaN/Inf input or a subnormal scale: refused
    std::vector<std::int64_t> q(x.size());
    EXPECT_THROW((quantize<float, std::int64_t>(view, case_params(c, spec), q)), Error);
    c.count_check();
    return;
  }
  const QuantParams params = case_params(c, spec);
  std::vector<std::int64_t> q(x.size());
  quantize<float, std::int64_t>(view, params, q);
  c.expect("q", q);
  if (c.has_expected("dequantized")) {
    std::vector<float> back(x.size());
    dequantize<std::int64_t, float>(TensorView<const std::int64_t>(q.data(), xa.shape()), params, back);
    c.expect("dequantized", back);
  }
}

void run_observe_and_quantize(const GoldenCase& c) {
  const QuantSpec spec = observer_spec(c.params().at("qspec"));
  const auto xa = c.input_array("x");
  const auto x = xa.to_vector<float>();
  const TensorView<const float> view(x.data(), xa.shape());
  const QuantParams params = choose_qparams<float>(view, spec);
  std::vector<std::int64_t> q(x.size());
  quantize<float, std::int64_t>(view, params, q);
  c.expect("q", q);
  c.expect("scale", params.scale);
  c.expect("zero_point", std::vector<std::int64_t>(params.zero_point.begin(), params.zero_point.end()));
}

void run_dequantize(const GoldenCase& c) {
  const QuantSpec spec = range_spec(c.params().at("qspec"));
  const auto qa = c.input_array("q");
  const auto q = qa.to_vector<std::int64_t>();
  std::vector<float> x(q.size());
  dequantize<std::int64_t, float>(TensorView<const std::int64_t>(q.data(), qa.shape()), case_params(c, spec),
                                  x);
  c.expect("x", x);
}

void run_fake_quantize(const GoldenCase& c) {
  const QuantSpec spec = range_spec(c.params().at("qspec"));
  const auto xa = c.input_array("x");
  const auto x = xa.to_vector<float>();
  const TensorView<const float> view(x.data(), xa.shape());
  std::vector<float> y(x.size());
  std::vector<std::uint8_t> mask(x.size());
  if (c.conformance() == "informational") {
    EXPECT_THROW(fake_quantize<float>(view, case_params(c, spec), y, mask), Error);
    c.count_check();
    return;
  }
  fake_quantize<float>(view, case_params(c, spec), y, mask);
  const auto dy = c.input<float>("dy");
  std::vector<float> dx(x.size());
  fake_quantize_backward<float>(dy, mask, dx);
  c.expect("y", y);
  c.expect("mask", mask);
  c.expect("dx", dx);
}

void run_fake_quantize_learnable(const GoldenCase& c) {
  const json& qspec = c.params().at("qspec");
  const QuantSpec spec = range_spec(qspec);
  const auto xa = c.input_array("x");
  const auto x = xa.to_vector<float>();
  const auto dy = c.input<float>("dy");
  const auto scale = c.input<float>("scale");
  const auto zero_point = c.input<float>("zero_point");
  const ChannelLayout layout = channel_layout(xa.shape(), spec);
  const bool per_channel = spec.granularity == Granularity::kPerChannel;
  const float g = c.params().at("grad_factor").get<float>();
  std::vector<float> y(x.size());
  fake_quantize_learnable_forward(x, layout, scale, zero_point, spec.range(), y);
  const LearnableFakeQuantGrads grads =
      fake_quantize_learnable_backward(x, dy, layout, scale, zero_point, spec.range(), g, per_channel);
  if (c.conformance() != "informational") {
    c.expect("y", y);
    c.expect("dx", grads.dx);
    c.expect("dscale_per_element", grads.dscale_per_element);
    c.expect("dzero_point_per_element", grads.dzero_point_per_element);
    c.expect("dscale", grads.dscale);
    c.expect("dzero_point", grads.dzero_point);
    return;
  }
  // The fractional zero points (informational in the case files, since PyTorch's forward and backward
  // round z differently): the forward uses rint(z) and the per-tensor backward trunc(z + 0.5), as the
  // case's params record, and quantkit follows both rules, so every per-element array is reproduced
  // exactly and the sums within the tolerance of the integral-zero-point cases (sum order unspecified).
  const json& p = c.params();
  const float z = zero_point.at(0);
  EXPECT_EQ(std::nearbyint(z), p.at("zero_point_forward").get<float>()) << "forward: z rounded half to even";
  if (!per_channel)
    EXPECT_EQ(std::trunc(z + 0.5f), p.at("zero_point_backward").get<float>()) << "backward: trunc(z + 0.5)";
  c.expect_as("y", y, "exact");
  c.expect_as("dx", grads.dx, "exact");
  c.expect_as("dscale_per_element", grads.dscale_per_element, "exact");
  c.expect_as("dzero_point_per_element", grads.dzero_point_per_element, "exact");
  for (const char* sum : {"dscale", "dzero_point"}) {
    const auto& got = std::string(sum) == "dscale" ? grads.dscale : grads.dzero_point;
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(std::isfinite(got[0])) << sum;
    const auto want = c.expected_array(sum).to_vector<float>();
    EXPECT_NEAR(got[0], want.at(0), 1e-5 + 1e-5 * std::abs(want.at(0))) << sum;
  }
}

void run_embedding_prepack(const GoldenCase& c) {
  const int bits = c.params().at("bits").get<int>();
  const auto wa = c.input_array("weight");
  const auto w = wa.to_vector<float>();
  const std::int64_t rows = wa.shape()[0], dim = wa.shape()[1];
  const std::int64_t row_bytes = rowwise_row_bytes(dim, bits);
  std::vector<std::uint8_t> packed(static_cast<std::size_t>(rows * row_bytes));
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(rows * dim));
  std::vector<float> dequantized(static_cast<std::size_t>(rows * dim));
  std::vector<float> scale, bias;
  std::vector<half> scale16, bias16;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::span<std::uint8_t> row(packed.data() + r * row_bytes, static_cast<std::size_t>(row_bytes));
    prepack_row(std::span<const float>(w.data() + r * dim, static_cast<std::size_t>(dim)), bits, row);
    const RowwiseRowParams p = rowwise_params(row, dim, bits);
    scale.push_back(p.scale);
    bias.push_back(p.bias);
    for (std::int64_t d = 0; d < dim; ++d)
      codes[static_cast<std::size_t>(r * dim + d)] = static_cast<std::uint8_t>(rowwise_code(row, d, bits));
    dequantize_row(row, dim, bits,
                   std::span<float>(dequantized.data() + r * dim, static_cast<std::size_t>(dim)));
  }
  c.expect("packed", packed);
  c.expect("codes", codes);
  // float16 expectations are read back as float: widening is exact.
  c.expect("scale", scale);
  c.expect("bias", bias);
  if (c.has_expected("dequantized")) c.expect("dequantized", dequantized);
}

void run_embedding_bag(const GoldenCase& c) {
  const int bits = c.params().at("bits").get<int>();
  const auto pa = c.input_array("packed");
  const auto packed = pa.to_vector<std::uint8_t>();
  const std::int64_t rows = pa.shape()[0];
  const std::int64_t row_bytes = pa.shape()[1];
  const std::int64_t dim = bits == 8 ? row_bytes - 8 : (row_bytes - 4) * 8 / bits;
  const auto indices = c.input<std::int64_t>("indices");
  const auto offsets = c.input<std::int64_t>("offsets");
  const std::string mode_name = c.params().at("mode").get<std::string>();
  const BagMode mode = mode_name == "sum"    ? BagMode::kSum
                       : mode_name == "mean" ? BagMode::kMean
                                             : BagMode::kMax;
  const bool include_last = c.params().at("include_last_offset").get<bool>();
  std::vector<float> weights;
  if (c.has_input("per_sample_weights")) weights = c.input<float>("per_sample_weights");
  const std::int64_t bags = static_cast<std::int64_t>(offsets.size()) - (include_last ? 1 : 0);
  std::vector<float> out(static_cast<std::size_t>(bags * dim));
  embedding_bag_rowwise(packed, rows, dim, bits, indices, offsets, mode, weights, include_last, out);
  c.expect("out", out);
}

void run_linear_dynamic(const GoldenCase& c) {
  const auto xa = c.input_array("x");
  const auto x = xa.to_vector<float>();
  const auto wq = c.input<std::int8_t>("weight_q");
  const auto wscale = c.input<float>("weight_scale");
  const auto wzp = as<std::int32_t>(c.input<std::int64_t>("weight_zero_point"));
  const auto bias = c.input<float>("bias");
  const std::int64_t batch = xa.shape()[0], k = xa.shape()[1];
  const std::int64_t n = static_cast<std::int64_t>(bias.size());
  const LinearDynamicResult r = linear_dynamic_int8_ref(x, batch, k, wq, n, wscale, wzp, bias);
  c.expect("activation_q", r.activation_q);
  c.expect("acc", r.acc);
  // The case file allows a tolerance on y, but rule 9's formula fixes every float32 operation, so the
  // reference reproduces it bit for bit (and so must the kernel, below).
  c.expect_as("y", r.y, "exact");

  // The dispatched INT8 GEMM with per-tensor activations is the same computation, bit for bit.
  for (std::int32_t z : wzp) ASSERT_EQ(z, 0) << "the INT8 kernels take symmetric weights";
  const std::vector<float> row_scales =
      wscale.size() == 1 ? std::vector<float>(static_cast<std::size_t>(n), wscale[0]) : wscale;
  const auto packed = kernels::pack_int8_codes(wq, row_scales, n, k);
  std::vector<float> y(static_cast<std::size_t>(batch * n));
  kernels::gemm(x, batch, packed, y, {.threads = 1, .activations = kernels::ActivationScaling::kPerTensor},
                bias);
  EXPECT_EQ(y, r.y) << "gemm int8 (" << kernels::to_string(kernels::active_isa()) << ") differs from rule 9";
  c.expect_as("y", y, "exact");
  // PyTorch's oneDNN engine applies the scales in another order: informational, within a few ulp of y.
  const auto onednn = c.expected_array("y_torch_onednn").to_vector<float>();
  ASSERT_EQ(onednn.size(), y.size());
  for (std::size_t i = 0; i < y.size(); ++i)
    EXPECT_NEAR(y[i], onednn[i], 64 * std::numeric_limits<float>::epsilon() * (1 + std::abs(onednn[i])))
        << "y[" << i << "] vs PyTorch's oneDNN output";
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesReference) {
  const GoldenCase c(golden_dir() / GetParam());
  const std::string op = c.op();
  if (op == "observer.minmax")
    run_observer_minmax(c);
  else if (op == "observer.moving_average_minmax")
    run_observer_moving_average(c);
  else if (op == "observer.histogram")
    run_observer_histogram(c);
  else if (op == "choose_qparams_dynamic")
    run_dynamic_qparams(c);
  else if (op == "quantize")
    run_quantize(c);
  else if (op == "observe_and_quantize")
    run_observe_and_quantize(c);
  else if (op == "dequantize")
    run_dequantize(c);
  else if (op == "fake_quantize")
    run_fake_quantize(c);
  else if (op == "fake_quantize_learnable")
    run_fake_quantize_learnable(c);
  else if (op == "embedding_prepack_rowwise")
    run_embedding_prepack(c);
  else if (op == "embedding_bag_rowwise")
    run_embedding_bag(c);
  else if (op == "linear_dynamic_int8")
    run_linear_dynamic(c);
  else
    FAIL() << "unknown golden op '" << op << "': add it to the dispatcher";
  // Every case, informational ones included, must check something.
  EXPECT_GT(c.checks(), 0) << GetParam() << " checked nothing";
}

INSTANTIATE_TEST_SUITE_P(AllCases, Golden, ::testing::ValuesIn(golden_case_ids()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace_if(
                               name.begin(), name.end(),
                               [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); }, '_');
                           return name;
                         });

TEST(GoldenIndex, EveryIndexedCaseIsPresent) {
  std::ifstream in(golden_dir() / "index.json");
  ASSERT_TRUE(in) << "tests/data/golden/index.json is missing";
  const json index = json::parse(in);
  const auto ids = golden_case_ids();
  EXPECT_EQ(index.at("case_count").get<std::size_t>(), ids.size());
  for (const auto& entry : index.at("cases")) {
    EXPECT_TRUE(std::binary_search(ids.begin(), ids.end(), entry.at("id").get<std::string>()))
        << entry.at("id");
  }
}

}  // namespace
}  // namespace qk::test
