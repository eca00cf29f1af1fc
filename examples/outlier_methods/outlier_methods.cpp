// outlier_methods: "when RTN is not enough". An MLP trained on MNIST, then every linear layer quantized
// with calibration activations from the training split by rtn, importance (imatrix), awq and gptq, at 4 and
// 3 bits in groups of 64 inputs (and 2-bit groups, 3-bit per channel); test accuracy, bits per weight and
// bytes for each. With --networks N, N networks (seeds S, S+1, ...) are trained and every figure is the
// mean over them: at 3 bits one network's 2,000 test images resolve the methods only to an image or two.
// Markdown table, or JSON rows with --json.
//
//   outlier_methods [--data DIR] [--quick] [--json] [--check] [--epochs N] [--seed S] [--networks N]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <quantkit/quantkit.hpp>
#include <string>
#include <vector>

#include "example_args.hpp"  // examples/common
#include "mlp.hpp"

#ifndef MNIST_DATA_DIR
#define MNIST_DATA_DIR "examples/data/mnist10k"
#endif

using digits::Mat;
using digits::Net;

namespace {

struct Options {
  std::string data = MNIST_DATA_DIR;
  int epochs = 8;
  std::uint64_t seed = 2026;
  int networks = 1;
  bool json = false, check = false, quick = false;
};

struct Split {
  Mat x_train, x_test;
  std::vector<int> y_train, y_test;
};

// The 28x28 images cropped to their central 24x24 (MNIST centres each digit's 20x20 box, so the 2-pixel
// border is almost always empty): 576 inputs, nine groups of 64. Pixels scaled to [0, 1]. The file is
// grouped by class, so a seeded shuffle comes first; 2,000 test images (one image is 0.05 points).
Split load_mnist(const std::string& dir, std::uint64_t seed) {
  const qk::io::NpyArray xa = qk::io::read_npy(dir + "/mnist10k_X.npy");
  const qk::io::NpyArray ya = qk::io::read_npy(dir + "/mnist10k_y.npy");
  if (xa.shape().size() != 2 || xa.shape()[1] != 784 || ya.shape().size() != 1 ||
      ya.shape()[0] != xa.shape()[0])
    throw qk::Error(dir + ": mnist10k_X must be [n, 784] and mnist10k_y [n]");
  const std::size_t n = static_cast<std::size_t>(xa.shape()[0]), n_test = 2000;
  if (n < 2 * n_test) throw qk::Error(dir + "/mnist10k_X.npy: too few images for the split");
  const std::vector<float> x = xa.to_vector<float>();
  const std::vector<std::int64_t> y = ya.to_vector<std::int64_t>();
  for (std::size_t i = 0; i < n; ++i)
    if (y[i] < 0 || y[i] > 9)
      throw qk::Error(dir + "/mnist10k_y.npy: label out of 0..9 at index " + std::to_string(i));
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  digits::Rng rng(seed);
  rng.shuffle(order);
  Split s;
  s.x_test.resize(static_cast<Eigen::Index>(n_test), 576);
  s.x_train.resize(static_cast<Eigen::Index>(n - n_test), 576);
  for (std::size_t i = 0; i < n; ++i) {
    Mat& dst = i < n_test ? s.x_test : s.x_train;
    const auto row = static_cast<Eigen::Index>(i < n_test ? i : i - n_test);
    for (int r = 0; r < 24; ++r)
      for (int c = 0; c < 24; ++c) dst(row, r * 24 + c) = x[order[i] * 784 + (r + 2) * 28 + (c + 2)] / 255.0f;
    (i < n_test ? s.y_test : s.y_train).push_back(static_cast<int>(y[order[i]]));
  }
  return s;
}

void train(Net& net, const Split& data, int epochs, digits::Rng& rng) {
  const float lr = 2e-3f;
  digits::Adam adam(net, lr);
  digits::for_each_minibatch(data.x_train, data.y_train, epochs, 64, rng,
                             [&](const Mat& x, const std::vector<int>& y, double progress) {
                               adam.set_lr(digits::cosine_lr(lr, progress));
                               const auto ws = digits::float_weights(net);
                               std::vector<Mat> acts;
                               Mat dz = digits::cross_entropy_grad(digits::forward(net, ws, x, &acts), y);
                               dz /= static_cast<float>(x.rows());
                               adam.step(net, digits::backward(net, ws, acts, dz));
                             });
}

struct Row {
  std::string method;
  int bits = 32;
  std::int64_t group_size = 0;
  double bits_per_weight = 32;
  std::uint64_t bytes = 0;
  double accuracy = 0;
  double kl = 0;       // mean KL divergence of the test predictions from FP32's: finer than accuracy
  double seconds = 0;  // quantizing every layer (statistics excluded)
};

Options parse_args(int argc, char** argv) {
  Options o;
  digits::ArgReader args(argc, argv);
  std::string a;
  while (args.next(a)) {
    if (args.read_common(a, o)) continue;
    if (a == "--epochs") {
      o.epochs = args.count(1);
    } else if (a == "--networks") {
      o.networks = args.count(1);
    } else if (a == "--quick") {
      o.epochs = 2;
      o.quick = true;
    } else {
      throw qk::Error("unknown option " + a +
                      " (options: --data DIR --epochs N --seed S --networks N --quick --json --check)");
    }
  }
  return o;
}

// One network: trained from `seed`, then every method and setting; the rows in a fixed order.
std::vector<Row> evaluate_network(const Options& opt, std::uint64_t seed, std::int64_t* weight_count) {
  const Split data = load_mnist(opt.data, seed);
  digits::Rng rng(seed + 1);
  Net net = digits::make_net({576, 256, 256, 10}, rng);
  train(net, data, opt.epochs, rng);
  const Mat fp32_logits = digits::forward(net, digits::float_weights(net), data.x_test);
  const double fp32 = digits::accuracy(fp32_logits, data.y_test);
  const Mat fp32_prob = digits::softmax(fp32_logits);
  const std::int64_t n_weights = net.weight_count();

  // Calibration: 1,024 training images; each layer sees the FP32 network's input to it.
  const Mat calib = data.x_train.topRows(1024);
  std::vector<Mat> acts;
  digits::forward(net, digits::float_weights(net), calib, &acts);
  std::vector<qk::ActivationStats> stats;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    stats.emplace_back(net.layers[l].weight.cols());
    stats.back().add({acts[l].data(), static_cast<std::size_t>(acts[l].size())}, acts[l].rows());
  }

  *weight_count = n_weights;
  std::vector<Row> rows = {{"fp32", 32, 0, 32.0, static_cast<std::uint64_t>(n_weights) * 4, fp32, 0, 0}};
  // The settings (4 and 3 bits, groups of 64), then where RTN visibly breaks on this network:
  // 2 bits in groups of 64, and 3 bits with one scale per output channel.
  const std::vector<std::pair<int, std::int64_t>> settings = {{4, 64}, {3, 64}, {2, 64}, {3, 0}};
  for (const auto& [bits, group] : settings) {
    for (const qk::WeightMethod m : {qk::WeightMethod::kRtn, qk::WeightMethod::kImportance,
                                     qk::WeightMethod::kAwq, qk::WeightMethod::kGptq}) {
      qk::WeightQuantOptions o;
      o.bits = bits;
      o.group_size = group;
      std::vector<Mat> ws;
      std::uint64_t bytes = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t l = 0; l < net.layers.size(); ++l) {
        const Mat& w = net.layers[l].weight;
        const qk::QuantizedLinear q = qk::quantize_linear({w.data(), static_cast<std::size_t>(w.size())},
                                                          w.rows(), w.cols(), &stats[l], m, o);
        Mat wq(w.rows(), w.cols());
        std::copy(q.dequantized.begin(), q.dequantized.end(), wq.data());
        ws.push_back(std::move(wq));
        // Stored: packed codes, a float32 scale and an int32 zero point per group (the quantized-file
        // format), and AWQ's float32 factor per input channel.
        bytes += static_cast<std::uint64_t>(qk::packed_bytes(w.size(), bits)) + q.params.scale.size() * 8 +
                 q.input_scale.size() * 4;
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::vector<const Mat*> ptrs;
      for (const auto& w : ws) ptrs.push_back(&w);
      const Mat logits = digits::forward(net, ptrs, data.x_test);
      const double a = digits::accuracy(logits, data.y_test);
      const double kl_value = digits::kl_divergence(fp32_prob, digits::softmax(logits));
      rows.push_back({qk::to_string(m), bits, group,
                      8.0 * static_cast<double>(bytes) / static_cast<double>(n_weights), bytes, a, kl_value,
                      seconds});
    }
  }
  return rows;
}

int run(const Options& opt) {
  std::int64_t n_weights = 0;
  std::vector<Row> rows;
  for (int k = 0; k < opt.networks; ++k) {
    const std::vector<Row> one = evaluate_network(opt, opt.seed + static_cast<std::uint64_t>(k), &n_weights);
    if (rows.empty()) {
      rows = one;
      continue;
    }
    for (std::size_t i = 0; i < rows.size(); ++i) {
      rows[i].accuracy += one[i].accuracy;
      rows[i].kl += one[i].kl;
      rows[i].seconds += one[i].seconds;
    }
  }
  for (Row& r : rows) {
    r.accuracy /= opt.networks;
    r.kl /= opt.networks;
    r.seconds /= opt.networks;
  }
  const double fp32 = rows.front().accuracy;
  std::map<std::string, double> acc, kl;
  for (const Row& r : rows) {
    if (r.group_size != 64) continue;
    acc[fmt::format("{}{}", r.method, r.bits)] = r.accuracy;
    kl[fmt::format("{}{}", r.method, r.bits)] = r.kl;
  }

  // The accuracy targets, and the finer checks --check enforces. At 3 bits in groups of 64 RTN
  // loses only an image or two of one network's 2,000, so "above RTN" is enforced only on the mean of at
  // least kResolvingNetworks networks (10,000 test predictions); with fewer it is reported. Always
  // enforced: 4-bit accuracy within a point of FP32, and the predictions' KL divergence from FP32, which
  // resolves what accuracy cannot: GPTQ at most half of RTN's at 4, 3 and 2 bits, AWQ below RTN's at 3
  // and 2 bits.
  constexpr int kResolvingNetworks = 5;
  struct Target {
    std::string what;
    bool ok;
    bool enforced;
  };
  std::vector<Target> targets;
  for (const char* m : {"gptq", "awq"}) {
    targets.push_back(
        {fmt::format("{} 3-bit {:.4f} > rtn 3-bit {:.4f}", m, acc[fmt::format("{}3", m)], acc["rtn3"]),
         acc[fmt::format("{}3", m)] > acc["rtn3"], opt.networks >= kResolvingNetworks});
    targets.push_back(
        {fmt::format("{} 4-bit {:.4f} within 0.01 of FP32 {:.4f}", m, acc[fmt::format("{}4", m)], fp32),
         fp32 - acc[fmt::format("{}4", m)] <= 0.01, true});
  }
  for (const int b : {4, 3, 2}) {
    const double g = kl[fmt::format("gptq{}", b)], r = kl[fmt::format("rtn{}", b)];
    targets.push_back(
        {fmt::format("gptq {}-bit KL to FP32 {:.2e} <= half of rtn's {:.2e}", b, g, r), g <= 0.5 * r, true});
  }
  for (const int b : {3, 2}) {
    const double a = kl[fmt::format("awq{}", b)], r = kl[fmt::format("rtn{}", b)];
    targets.push_back({fmt::format("awq {}-bit KL to FP32 {:.2e} < rtn's {:.2e}", b, a, r), a < r, true});
  }
  const bool all_ok =
      std::all_of(targets.begin(), targets.end(), [](const Target& t) { return t.ok || !t.enforced; });

  if (opt.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows)
      out.push_back({{"method", r.method},
                     {"bits", r.bits},
                     {"group_size", r.group_size},
                     {"bits_per_weight", r.bits_per_weight},
                     {"weight_bytes", r.bytes},
                     {"accuracy", r.accuracy},
                     {"kl_to_fp32", r.kl},
                     {"seconds", r.seconds}});
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print(
        "MNIST MLP 576-256-256-10, 8000 train / 2000 test images, {} weights, {} epochs; calibration: 1024 "
        "training images; {}\n\n",
        n_weights, opt.epochs,
        opt.networks == 1 ? fmt::format("one network (seed {})", opt.seed)
                          : fmt::format("mean of {} networks (seeds {}..{})", opt.networks, opt.seed,
                                        opt.seed + static_cast<std::uint64_t>(opt.networks) - 1));
    fmt::print(
        "| method | bits | group | bits/weight | weight bytes | accuracy | KL to FP32 | quantize s |\n");
    fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const Row& r : rows)
      fmt::print("| {} | {} | {} | {:.2f} | {} | {:.4f} | {:.2e} | {:.3f} |\n", r.method, r.bits,
                 r.group_size ? std::to_string(r.group_size) : "-", r.bits_per_weight, r.bytes, r.accuracy,
                 r.kl, r.seconds);
    fmt::print("\ntargets:\n");
    for (const Target& t : targets)
      fmt::print("  [{}] {}{}\n", t.ok ? "ok" : "MISSED", t.what,
                 t.enforced ? "" : " (reported, not enforced)");
  }
  // --quick trains too briefly for the accuracy targets; it checks that everything runs.
  if (opt.check && !opt.quick && !all_ok) {
    for (const Target& t : targets)
      if (!t.ok && t.enforced) fmt::print(stderr, "outlier_methods: target missed: {}\n", t.what);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    fmt::print(stderr, "outlier_methods: error: {}\n", e.what());
    return 1;
  }
}
