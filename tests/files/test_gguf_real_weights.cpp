// GGUF round trips on real weights: the bundled Silero VAD weights and a digits classifier trained here
// (examples/common/mlp.hpp, on the bundled digits), written as F32 GGUF, quantized to every ggml type
// quantkit writes and measured against the original (files/model_compare.hpp). Each tensor's relative
// RMSE must stay within its type's bound on these weights, and the quantized classifier must keep its
// accuracy.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "mlp.hpp"  // examples/common: the digits examples' MLP, Adam and data helpers
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/files/gguf_quant.hpp"
#include "quantkit/files/model_compare.hpp"
#include "quantkit/io/gguf.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {
namespace {

using io::test::ScratchDir;

struct Named {
  std::string name;
  Shape shape;  // outermost first
  std::vector<float> values;
};

void write_f32_gguf(const std::string& path, const std::vector<Named>& tensors) {
  std::vector<io::GgufWriter::Info> infos;
  for (const Named& t : tensors)
    infos.push_back({t.name, std::vector<std::int64_t>(t.shape.rbegin(), t.shape.rend()), io::kGgmlF32});
  io::GgufWriter w(path, {{"general.architecture", io::GgufValue::of_string("test")}}, infos);
  for (const Named& t : tensors) w.write_data(std::as_bytes(std::span(t.values)));
  w.commit();
}

// The bound on a tensor's relative RMSE for the type it was written in (the fallback types included). On
// N(0, 1)-like rows the 4-bit types give about 0.09-0.1, 5-bit 0.04-0.05, 8-bit 0.005; real weights
// with outliers sit higher within a block, hence the margin.
double bound(const std::string& type) {
  static const std::map<std::string, double> b = {
      {"f32", 0.0},   {"f16", 1e-3},  {"bf16", 8e-3}, {"q8_0", 0.01}, {"q6_K", 0.03},
      {"q5_1", 0.06}, {"q5_0", 0.07}, {"q5_K", 0.07}, {"q4_1", 0.12}, {"q4_0", 0.14},
      {"q4_K", 0.14}, {"q3_K", 0.3},  {"q2_K", 0.5}};
  return b.at(type);
}

const char* const kTypes[] = {"q8_0", "q6_K", "q5_1", "q5_0", "q5_K", "q4_1",
                              "q4_0", "q4_K", "q3_K", "q2_K", "f16",  "bf16"};

void expect_within_bounds(const ScratchDir& dir, const std::string& model) {
  for (const char* name : kTypes) {
    SCOPED_TRACE(name);
    GgufQuantOptions o;
    o.type = *ggml::type_from_name(name);
    const std::string out = dir.file(std::string("q.") + name + ".gguf");
    quantize_gguf(model, out, o);
    const ModelComparison c = compare_model(out, model);
    for (const ModelTensorError& t : c.tensors)
      EXPECT_LE(t.relative_rmse, bound(t.type)) << t.name << " " << t.type;
  }
}

TEST(GgufRealWeights, SileroVadEveryTypeWithinItsBound) {
  ScratchDir dir;
  const std::filesystem::path folder =
      std::filesystem::path(QK_SOURCE_DIR) / "examples/data/silero_vad_v5_16k";
  std::vector<Named> tensors;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() != ".npy") continue;
    const io::NpyArray a = io::read_npy(entry.path().string());
    tensors.push_back({entry.path().stem().string(), a.shape(), a.to_vector<float>()});
  }
  std::sort(tensors.begin(), tensors.end(), [](const Named& a, const Named& b) { return a.name < b.name; });
  ASSERT_EQ(tensors.size(), 14u);
  write_f32_gguf(dir.file("silero.gguf"), tensors);
  expect_within_bounds(dir, dir.file("silero.gguf"));
}

// A 64-64-64-10 ReLU classifier trained on the bundled digits (rows of 64: two 32-weight blocks, so the
// K-quants fall back), then its weights through GGUF: each type within its bound, and the 8-bit and
// 5-bit types within one point of the float accuracy, the 4-bit ones within three.
TEST(GgufRealWeights, DigitsNetworkKeepsItsAccuracy) {
  const std::string data = std::string(QK_SOURCE_DIR) + "/examples/data/digits";
  const io::NpyArray xa = io::read_npy(data + "/digits_X.npy");
  const io::NpyArray ya = io::read_npy(data + "/digits_y.npy");
  const std::vector<float> xs = xa.to_vector<float>();
  const std::vector<std::int64_t> ys = ya.to_vector<std::int64_t>();
  const Eigen::Index n = xa.shape()[0], test_n = 500, train_n = n - test_n;
  digits::Mat x_train(train_n, 64), x_test(test_n, 64);
  std::vector<int> y_train, y_test;
  for (Eigen::Index i = 0; i < n; ++i) {
    digits::Mat& dst = i < train_n ? x_train : x_test;
    const Eigen::Index row = i < train_n ? i : i - train_n;
    for (Eigen::Index k = 0; k < 64; ++k) dst(row, k) = xs[static_cast<std::size_t>(i * 64 + k)] / 16.0f;
    (i < train_n ? y_train : y_test).push_back(static_cast<int>(ys[static_cast<std::size_t>(i)]));
  }
  digits::Rng rng(5);
  digits::Net net = digits::make_net({64, 64, 64, 10}, rng);
  digits::Adam adam(net, 3e-3f);
  digits::for_each_minibatch(
      x_train, y_train, 15, 32, rng, [&](const digits::Mat& x, const std::vector<int>& y, double) {
        std::vector<digits::Mat> acts;
        const digits::Mat logits = digits::forward(net, digits::float_weights(net), x, &acts);
        adam.step(net, digits::backward(net, digits::float_weights(net), acts,
                                        digits::cross_entropy_grad(logits, y)));
      });
  const double float_accuracy =
      digits::accuracy(digits::forward(net, digits::float_weights(net), x_test), y_test);
  ASSERT_GT(float_accuracy, 0.9);

  ScratchDir dir;
  std::vector<Named> tensors;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    const digits::Layer& layer = net.layers[l];
    const std::string base = "fc" + std::to_string(l);
    tensors.push_back({base + ".weight",
                       {layer.weight.rows(), layer.weight.cols()},
                       std::vector<float>(layer.weight.data(), layer.weight.data() + layer.weight.size())});
    tensors.push_back({base + ".bias",
                       {layer.bias.size()},
                       std::vector<float>(layer.bias.data(), layer.bias.data() + layer.bias.size())});
  }
  write_f32_gguf(dir.file("digits.gguf"), tensors);
  expect_within_bounds(dir, dir.file("digits.gguf"));

  for (const char* name : kTypes) {
    SCOPED_TRACE(name);
    const io::GgufFile f = io::GgufFile::open(dir.file(std::string("q.") + name + ".gguf"));
    digits::Net q = net;
    for (const io::GgufTensor& t : f.tensors()) {
      if (!t.name.ends_with(".weight")) continue;
      digits::Mat& w = q.layers[static_cast<std::size_t>(t.name[2] - '0')].weight;
      const auto type = static_cast<ggml::Type>(t.type);
      const std::int64_t cols = t.ne[0], row = ggml::row_bytes(type, cols);
      for (std::int64_t r = 0; r < t.ne[1]; ++r)
        ggml::dequantize_row(type, t.data.data() + r * row, cols, w.data() + r * cols);
    }
    const double accuracy = digits::accuracy(digits::forward(q, digits::float_weights(q), x_test), y_test);
    // 2- and 3-bit fall back to Q4_0 here (rows of 64 hold no super-block).
    const std::string type = name;
    const bool four_bits_or_less = type.starts_with("q4") || type.starts_with("q3") || type.starts_with("q2");
    EXPECT_GE(accuracy, float_accuracy - (four_bits_or_less ? 0.03 : 0.01)) << "float " << float_accuracy;
  }
}

}  // namespace
}  // namespace qk
