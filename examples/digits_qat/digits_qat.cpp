// digits_qat: PTQ, QAT (with and without distillation) and a task-metric mixed-precision plan on a real
// task — an MLP classifying the UCI handwritten digits (8x8 images) — and the deployed INT8/INT4 networks
// run through quantkit's integer kernels. Prints a markdown table (or, with --json, the rows as a JSON
// array of {method, bits, weight_bytes, accuracy, ...}).
//
//   digits_qat [--data DIR] [--quick] [--json] [--check] [--epochs N] [--qat-epochs N] [--seed S]
//
// --quick is the CI smoke setting (fewer epochs); --check exits 1 when a target of the issue is missed
// (with --quick, only the targets that do not need full training: FP32, PTQ INT8 and the kernels).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <quantkit/quantkit.hpp>
#include <string>
#include <vector>

#include "example_args.hpp"  // examples/common
#include "mlp.hpp"

#ifndef DIGITS_DATA_DIR
#define DIGITS_DATA_DIR "examples/data/digits"
#endif

using digits::Mat;
using digits::Net;

namespace {

struct Options {
  std::string data = DIGITS_DATA_DIR;
  int epochs = 60;
  int qat_epochs = 20;
  std::uint64_t seed = 2026;
  bool json = false;
  bool check = false;
  bool quick = false;  // the CI smoke run: --check then holds only the targets that need no full training
};

struct Split {
  Mat x_train, x_test;
  std::vector<int> y_train, y_test;
};

// The fixed split: a seeded shuffle, 540 test images (30%; one image is 0.19 accuracy points), the rest
// for training. Pixels 0..16 are scaled to [0, 1].
Split load_digits(const std::string& dir, std::uint64_t seed) {
  const qk::io::NpyArray xa = qk::io::read_npy(dir + "/digits_X.npy");
  const qk::io::NpyArray ya = qk::io::read_npy(dir + "/digits_y.npy");
  if (xa.shape().size() != 2 || ya.shape().size() != 1 || xa.shape()[0] != ya.shape()[0])
    throw qk::Error(dir + ": digits_X must be [n, 64] and digits_y [n]");
  const std::size_t n_test = 540;
  if (xa.shape()[1] != 64)
    throw qk::Error(dir + "/digits_X.npy: expected 64 pixels per image, got " +
                    std::to_string(xa.shape()[1]));
  if (xa.shape()[0] < static_cast<std::int64_t>(2 * n_test))
    throw qk::Error(dir + "/digits_X.npy: " + std::to_string(xa.shape()[0]) +
                    " images; the split needs at least " + std::to_string(2 * n_test));
  const std::vector<float> x = xa.to_vector<float>();
  const std::vector<std::int64_t> y = ya.to_vector<std::int64_t>();
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (y[i] < 0 || y[i] > 9)
      throw qk::Error(dir + "/digits_y.npy: label " + std::to_string(y[i]) + " at index " +
                      std::to_string(i) + " is not a digit 0..9");
  }
  const auto n = static_cast<std::size_t>(xa.shape()[0]);
  const auto d = static_cast<Eigen::Index>(xa.shape()[1]);
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  digits::Rng rng(seed);
  rng.shuffle(order);
  Split s;
  s.x_test.resize(static_cast<Eigen::Index>(n_test), d);
  s.x_train.resize(static_cast<Eigen::Index>(n - n_test), d);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t src = order[i];
    Mat& dst = i < n_test ? s.x_test : s.x_train;
    const auto row = static_cast<Eigen::Index>(i < n_test ? i : i - n_test);
    for (Eigen::Index k = 0; k < d; ++k) dst(row, k) = x[src * static_cast<std::size_t>(d) + k] / 16.0f;
    (i < n_test ? s.y_test : s.y_train).push_back(static_cast<int>(y[src]));
  }
  return s;
}

// --- fake-quantized weights -------------------------------------------------------------------------

qk::Shape shape_of(const Mat& w) { return {w.rows(), w.cols()}; }

Mat with_values(const Mat& like, std::span<const float> v) {
  Mat m(like.rows(), like.cols());
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

// PTQ: every layer's weights in `format` (min/max scales per output channel).
std::vector<Mat> ptq_weights(const Net& net, const std::vector<qk::CandidateFormat>& formats) {
  std::vector<Mat> out;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    const Mat& w = net.layers[l].weight;
    out.push_back(with_values(
        w,
        qk::apply_candidate({w.data(), static_cast<std::size_t>(w.size())}, shape_of(w), formats[l]).approx));
  }
  return out;
}

std::vector<const Mat*> pointers(const std::vector<Mat>& ws) {
  std::vector<const Mat*> p;
  for (const auto& w : ws) p.push_back(&w);
  return p;
}

std::uint64_t int_weight_bytes(const Net& net, const std::vector<int>& bits) {
  std::uint64_t bytes = 0;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    const Mat& w = net.layers[l].weight;
    bytes += static_cast<std::uint64_t>(qk::packed_bytes(w.size(), bits[l])) +
             static_cast<std::uint64_t>(w.rows()) * 8;  // float32 scale + int32 zero point per channel
  }
  return bytes;
}

qk::QuantSpec weight_spec(int bits) {
  qk::QuantSpec spec;
  spec.bits = bits;
  spec.is_signed = true;
  spec.scheme = qk::Scheme::kSymmetric;
  spec.granularity = qk::Granularity::kPerChannel;
  spec.axis = 0;
  return spec;
}

// --- training -----------------------------------------------------------------------------------------

struct Distill {
  const Net* teacher = nullptr;
  float temperature = 4.0f;
  float weight = 0.5f;  // of the KL term; the label term gets 1 - weight
};

// QAT weights per layer: FakeQuantize (observer on the current weights, frozen after half the steps) or
// LSQ (a learned scale per channel).
struct QatHooks {
  std::vector<qk::FakeQuantize> ste;
  std::vector<qk::LearnableFakeQuantize> lsq;
  bool empty() const { return ste.empty() && lsq.empty(); }
};

QatHooks make_hooks(const Net& net, int bits, bool learnable, std::int64_t observer_steps) {
  QatHooks h;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    if (learnable) {
      h.lsq.emplace_back(weight_spec(bits));
    } else {
      qk::FakeQuantizeConfig c;
      c.spec = weight_spec(bits);
      c.observer = qk::QatObserver::kMovingAverage;
      c.averaging_constant = 1.0f;  // the current weights' range each step, until frozen
      c.observer_steps = observer_steps;
      h.ste.emplace_back(c);
    }
  }
  return h;
}

// The weights a QAT network deploys with: its float weights quantized with the hooks' parameters.
std::vector<Mat> hooked_weights(const Net& net, QatHooks& hooks, bool training) {
  std::vector<Mat> out;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    const Mat& w = net.layers[l].weight;
    const qk::TensorView<const float> view(w.data(), shape_of(w));
    std::vector<float> y(static_cast<std::size_t>(w.size()));
    if (!hooks.ste.empty()) {
      if (training) {
        hooks.ste[l].forward(view, y);
      } else {
        qk::fake_quantize<float>(view, hooks.ste[l].params(), y);
      }
    } else {
      hooks.lsq[l].forward(view, y);
    }
    out.push_back(with_values(w, y));
  }
  return out;
}

// Plain SGD on LSQ's scales; LSQ's gradient scale 1/sqrt(N * qmax) already evens out the layers.
constexpr float kScaleLearningRate = 0.01f;

void train(Net& net, const Split& data, int epochs, float lr, digits::Rng& rng, QatHooks* hooks = nullptr,
           const Distill* distill = nullptr) {
  digits::Adam adam(net, lr);
  digits::for_each_minibatch(
      data.x_train, data.y_train, epochs, 32, rng,
      [&](const Mat& x, const std::vector<int>& y, double progress) {
        adam.set_lr(digits::cosine_lr(lr, progress));
        const Eigen::Index b = x.rows();
        std::vector<Mat> qw;
        const bool qat = hooks && !hooks->empty();
        if (qat) qw = hooked_weights(net, *hooks, /*training=*/true);
        const std::vector<const Mat*> ws = qat ? pointers(qw) : digits::float_weights(net);
        std::vector<Mat> acts;
        const Mat logits = digits::forward(net, ws, x, &acts);
        // d(mean cross-entropy)/dlogits = (softmax - onehot) / b; distillation adds
        // weight * T^2 * d KL(teacher_T || student_T) = weight * T * (student_T - teacher_T) / b.
        Mat dz = digits::cross_entropy_grad(logits, y);
        if (distill) {
          const Mat t =
              digits::softmax(digits::forward(*distill->teacher, digits::float_weights(*distill->teacher), x),
                              distill->temperature);
          const Mat s = digits::softmax(logits, distill->temperature);
          dz = (1 - distill->weight) * dz + distill->weight * distill->temperature * (s - t);
        }
        dz /= static_cast<float>(b);
        digits::Grads g = digits::backward(net, ws, acts, dz);
        if (qat) {
          for (std::size_t l = 0; l < net.layers.size(); ++l) {
            Mat dw(g.weight[l].rows(), g.weight[l].cols());
            const std::span<const float> dy(g.weight[l].data(), static_cast<std::size_t>(g.weight[l].size()));
            const std::span<float> dx(dw.data(), static_cast<std::size_t>(dw.size()));
            if (!hooks->ste.empty()) {
              hooks->ste[l].backward(dy, dx);
            } else {
              hooks->lsq[l].backward(dy, dx);
              hooks->lsq[l].sgd_step(kScaleLearningRate);
            }
            g.weight[l] = std::move(dw);
          }
        }
        adam.step(net, g);
      });
}

double evaluate(const Net& net, const std::vector<Mat>& weights, const Split& data) {
  return digits::accuracy(digits::forward(net, pointers(weights), data.x_test), data.y_test);
}

std::vector<Mat> copy_float_weights(const Net& net) {
  std::vector<Mat> w;
  for (const auto& l : net.layers) w.push_back(l.weight);
  return w;
}

struct Row {
  std::string method;   // fp32 | ptq | qat | mixed
  std::string variant;  // how: per-channel min/max, STE, LSQ, distillation, the plan
  double bits = 0;      // average bits per weight (nominal)
  std::uint64_t weight_bytes = 0;
  double accuracy = 0;
};

// --- the deployed networks: quantkit's integer kernels ------------------------------------------------

struct Deployed {
  std::string name;
  std::uint64_t weight_bytes = 0;
  double accuracy = 0;
  double fake_quant_accuracy = 0;
  double latency_us_batch1 = 0;
  double latency_us_batch64 = 0;
};

template <class Weights>
Mat run_kernels(const Net& net, const std::vector<Weights>& packed, const Mat& x) {
  Mat a = x;
  for (std::size_t l = 0; l < packed.size(); ++l) {
    Mat z(a.rows(), packed[l].rows);
    qk::kernels::gemm({a.data(), static_cast<std::size_t>(a.size())}, a.rows(), packed[l],
                      {z.data(), static_cast<std::size_t>(z.size())}, {},
                      {net.layers[l].bias.data(), static_cast<std::size_t>(net.layers[l].bias.size())});
    if (l + 1 < packed.size()) z = z.cwiseMax(0.0f);
    a = std::move(z);
  }
  return a;
}

// Median over rounds of the mean time of one forward of `rows` test images, in microseconds.
template <class Weights>
double latency_us(const Net& net, const std::vector<Weights>& packed, const Mat& x_test, Eigen::Index rows) {
  const Mat x = x_test.topRows(rows);
  std::vector<double> rounds;
  const int reps = rows == 1 ? 2000 : 200;
  for (int r = 0; r < 7; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    float sink = 0;
    for (int i = 0; i < reps; ++i) sink += run_kernels(net, packed, x)(0, 0);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rounds.push_back(s / reps * 1e6 + (sink == 12345.678f ? 1e-9 : 0.0));
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

template <class Weights>
Deployed deploy(const std::string& name, const Net& net, const std::vector<Weights>& packed,
                const Split& data, double fake_quant_accuracy) {
  Deployed d;
  d.name = name;
  for (const auto& w : packed) d.weight_bytes += static_cast<std::uint64_t>(qk::kernels::weight_bytes(w));
  d.accuracy = digits::accuracy(run_kernels(net, packed, data.x_test), data.y_test);
  d.fake_quant_accuracy = fake_quant_accuracy;
  d.latency_us_batch1 = latency_us(net, packed, data.x_test, 1);
  d.latency_us_batch64 = latency_us(net, packed, data.x_test, 64);
  return d;
}

Options parse_args(int argc, char** argv) {
  Options o;
  digits::ArgReader args(argc, argv);
  std::string a;
  while (args.next(a)) {
    if (args.read_common(a, o)) continue;
    if (a == "--epochs") {
      o.epochs = args.count(1);
    } else if (a == "--qat-epochs") {
      o.qat_epochs = args.count(1);
    } else if (a == "--quick") {
      o.epochs = 20;
      o.qat_epochs = 5;
      o.quick = true;
    } else {
      throw qk::Error("unknown option " + a +
                      " (options: --data DIR --epochs N --qat-epochs N --seed S --quick --json --check)");
    }
  }
  return o;
}

int run(const Options& opt) {
  const Split data = load_digits(opt.data, opt.seed);
  digits::Rng rng(opt.seed + 1);
  Net fp32 = digits::make_net({64, 128, 128, 10}, rng);
  train(fp32, data, opt.epochs, 2e-3f, rng);
  const std::uint64_t n_weights = static_cast<std::uint64_t>(fp32.weight_count());
  std::vector<Row> rows;
  const double fp32_acc = evaluate(fp32, copy_float_weights(fp32), data);
  rows.push_back({"fp32", "float32 weights", 32, n_weights * 4, fp32_acc});

  const std::vector<int> widths = {8, 4, 3, 2};
  std::map<int, double> ptq_acc, qat_acc;
  for (const int b : widths) {
    const std::vector<qk::CandidateFormat> f(fp32.layers.size(),
                                             qk::CandidateFormat{qk::integer_format(b, true), 0});
    ptq_acc[b] = evaluate(fp32, ptq_weights(fp32, f), data);
    rows.push_back({"ptq", "per-channel min/max", static_cast<double>(b),
                    int_weight_bytes(fp32, std::vector<int>(fp32.layers.size(), b)), ptq_acc[b]});
  }

  // QAT: fine-tune the FP32 network on fake-quantized weights (STE), observers frozen at half-way.
  const std::int64_t steps = static_cast<std::int64_t>(opt.qat_epochs) * ((data.x_train.rows() + 31) / 32);
  auto qat = [&](int b, bool learnable, const Distill* distill) {
    Net net = fp32;
    QatHooks hooks = make_hooks(net, b, learnable, std::max<std::int64_t>(1, steps / 2));
    digits::Rng r(opt.seed + 100 + static_cast<std::uint64_t>(b));
    train(net, data, opt.qat_epochs, 5e-4f, r, &hooks, distill);
    return evaluate(net, hooked_weights(net, hooks, /*training=*/false), data);
  };
  for (const int b : widths) {
    qat_acc[b] = qat(b, false, nullptr);
    rows.push_back({"qat", "STE, observer frozen after half the steps", static_cast<double>(b),
                    int_weight_bytes(fp32, std::vector<int>(fp32.layers.size(), b)), qat_acc[b]});
  }
  for (const int b : {3, 2}) {
    const double acc = qat(b, true, nullptr);
    rows.push_back({"qat", "LSQ (learned per-channel scales)", static_cast<double>(b),
                    int_weight_bytes(fp32, std::vector<int>(fp32.layers.size(), b)), acc});
  }
  const Distill kd{&fp32, 4.0f, 0.5f};
  double kd_acc = 0;
  for (const int b : {3, 2}) {
    kd_acc = qat(b, false, &kd);
    rows.push_back({"qat", fmt::format("STE + distillation (T={}, KL weight {})", kd.temperature, kd.weight),
                    static_cast<double>(b), int_weight_bytes(fp32, std::vector<int>(fp32.layers.size(), b)),
                    kd_acc});
  }

  // Mixed precision: the task metric of each (layer, format) is how far the network's predictions move
  // with only that layer quantized: the mean KL divergence from the FP32 network's softmax on the
  // training images (never the test set). The plan minimises its sum under 4 average bits per weight.
  const Mat base_prob = digits::softmax(digits::forward(fp32, digits::float_weights(fp32), data.x_train));
  std::vector<qk::LayerInput> inputs;
  for (std::size_t l = 0; l < fp32.layers.size(); ++l) {
    const Mat& w = fp32.layers[l].weight;
    inputs.push_back(
        {"fc" + std::to_string(l + 1), shape_of(w), {w.data(), static_cast<std::size_t>(w.size())}});
  }
  const qk::TaskMetric metric = [&](std::size_t layer, const qk::CandidateFormat&,
                                    std::span<const float> approx) {
    std::vector<Mat> ws = copy_float_weights(fp32);
    ws[layer] = with_values(ws[layer], approx);
    return digits::kl_divergence(base_prob,
                                 digits::softmax(digits::forward(fp32, pointers(ws), data.x_train)));
  };
  // Two candidate sets: qtool mixed's default integer formats (2, 3, 4, 8 bits) and every width 2..8.
  auto mixed = [&](const std::string& candidate_list) {
    const auto sens = qk::measure_sensitivity(inputs, qk::parse_candidates(candidate_list), {}, metric);
    const qk::Selection plan = qk::select_formats(sens, {qk::BudgetKind::kAverageBits, 4.0});
    std::vector<qk::CandidateFormat> chosen;
    std::vector<int> chosen_bits;
    std::string plan_text;
    for (std::size_t l = 0; l < sens.size(); ++l) {
      chosen.push_back(sens[l].options[plan.choice[l]].format);
      chosen_bits.push_back(chosen.back().bits());
      plan_text += (l ? " " : "") + sens[l].name + ":" + qk::to_string(chosen.back());
    }
    rows.push_back({"mixed", fmt::format("task-metric plan, candidates {}: {}", candidate_list, plan_text),
                    plan.average_bits, int_weight_bytes(fp32, chosen_bits),
                    evaluate(fp32, ptq_weights(fp32, chosen), data)});
    return rows.back();
  };
  const Row mixed_default = mixed("2,3,4,8");
  mixed("2,3,4,5,6,7,8");

  // The deployed PTQ networks: packed weights, dynamically quantized activations, integer kernels.
  std::vector<qk::kernels::Fp32Weights> p32;
  std::vector<qk::kernels::Int8Weights> p8;
  std::vector<qk::kernels::Int4Weights> p4;
  for (const auto& l : fp32.layers) {
    const std::span<const float> w(l.weight.data(), static_cast<std::size_t>(l.weight.size()));
    p32.push_back(qk::kernels::pack_fp32(w, l.weight.rows(), l.weight.cols()));
    p8.push_back(qk::kernels::pack_int8(w, l.weight.rows(), l.weight.cols()));
    // One group per row: INT4 per output channel, the PTQ 4-bit network's own scales.
    p4.push_back(qk::kernels::pack_int4(w, l.weight.rows(), l.weight.cols(), l.weight.cols()));
  }
  std::vector<Deployed> deployed = {deploy("fp32", fp32, p32, data, fp32_acc),
                                    deploy("int8", fp32, p8, data, ptq_acc[8]),
                                    deploy("int4", fp32, p4, data, ptq_acc[4])};

  // The targets.
  struct Target {
    std::string what;
    bool ok;
    bool needs_full_training = false;  // not checked by --quick --check
  };
  const std::vector<Target> targets = {
      {fmt::format("FP32 accuracy {:.4f} >= 0.95", fp32_acc), fp32_acc >= 0.95},
      {fmt::format("PTQ INT8 {:.4f} within 0.005 of FP32", ptq_acc[8]), fp32_acc - ptq_acc[8] <= 0.005},
      {fmt::format("QAT 4-bit {:.4f} within 0.01 of FP32", qat_acc[4]), fp32_acc - qat_acc[4] <= 0.01, true},
      {fmt::format("QAT 3-bit {:.4f} > PTQ 3-bit {:.4f}", qat_acc[3], ptq_acc[3]), qat_acc[3] > ptq_acc[3],
       true},
      {fmt::format("QAT 2-bit {:.4f} >= PTQ 2-bit {:.4f} + 0.05", qat_acc[2], ptq_acc[2]),
       qat_acc[2] >= ptq_acc[2] + 0.05, true},
      {fmt::format("mixed ({:.2f} bits, default candidates) {:.4f} >= PTQ 4-bit {:.4f}", mixed_default.bits,
                   mixed_default.accuracy, ptq_acc[4]),
       mixed_default.bits <= 4.0 + 1e-9 && mixed_default.accuracy >= ptq_acc[4], true},
      // 0.2 points: with 540 test images one changed prediction is 0.185 points.
      {fmt::format("INT8 kernels {:.4f} within 0.002 of fake-quant {:.4f}", deployed[1].accuracy, ptq_acc[8]),
       std::abs(deployed[1].accuracy - ptq_acc[8]) <= 0.002},
      {fmt::format("INT4 kernels {:.4f} within 0.002 of fake-quant {:.4f}", deployed[2].accuracy, ptq_acc[4]),
       std::abs(deployed[2].accuracy - ptq_acc[4]) <= 0.002},
  };
  auto checked = [&](const Target& t) { return !(opt.quick && t.needs_full_training); };
  const bool all_ok =
      std::all_of(targets.begin(), targets.end(), [&](const Target& t) { return t.ok || !checked(t); });

  if (opt.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
      out.push_back({{"method", r.method},
                     {"variant", r.variant},
                     {"bits", r.bits},
                     {"weight_bytes", r.weight_bytes},
                     {"accuracy", r.accuracy},
                     {"engine", "fake-quant"}});
    }
    for (const Deployed& d : deployed) {
      out.push_back({{"method", d.name == "fp32" ? "fp32" : "ptq"},
                     {"variant", "kernels, dynamic activations"},
                     {"bits", d.name == "fp32" ? 32 : (d.name == "int8" ? 8 : 4)},
                     {"weight_bytes", d.weight_bytes},
                     {"accuracy", d.accuracy},
                     {"engine", "kernels-" + d.name},
                     {"latency_us_batch1", d.latency_us_batch1},
                     {"latency_us_batch64", d.latency_us_batch64}});
    }
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print(
        "digits MLP 64-128-128-10, {} train / {} test images, {} weights, FP32 {} epochs, QAT {} epochs\n\n",
        data.x_train.rows(), data.x_test.rows(), n_weights, opt.epochs, opt.qat_epochs);
    fmt::print("| method | bits | weight bytes | accuracy | how |\n|---|---:|---:|---:|---|\n");
    for (const Row& r : rows)
      fmt::print("| {} | {:.2f} | {} | {:.4f} | {} |\n", r.method, r.bits, r.weight_bytes, r.accuracy,
                 r.variant);
    fmt::print(
        "\nDeployed (quantkit kernels, {} ISA, 1 thread; INT8/INT4 quantize activations per row at run "
        "time):\n\n",
        qk::kernels::to_string(qk::kernels::active_isa()));
    fmt::print(
        "| weights | weight bytes | accuracy | fake-quant accuracy | batch 1 (us) | batch 64 (us) |\n");
    fmt::print("|---|---:|---:|---:|---:|---:|\n");
    for (const Deployed& d : deployed)
      fmt::print("| {} | {} | {:.4f} | {:.4f} | {:.2f} | {:.2f} |\n", d.name, d.weight_bytes, d.accuracy,
                 d.fake_quant_accuracy, d.latency_us_batch1, d.latency_us_batch64);
    fmt::print("\ntargets:\n");
    for (const Target& t : targets)
      fmt::print("  [{}] {}{}\n", t.ok ? "ok" : "MISSED", t.what,
                 checked(t) ? "" : " (needs full training; not checked with --quick)");
  }
  if (opt.check && !all_ok) {
    for (const Target& t : targets)
      if (!t.ok && checked(t)) fmt::print(stderr, "digits_qat: target missed: {}\n", t.what);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    fmt::print(stderr, "digits_qat: error: {}\n", e.what());
    return 1;
  }
}
