// quickstart: quantize a weight matrix per channel to INT8 and per group to INT4 with quantkit, write the
// INT8 result in the quantized-file format, read it back, and report the error of each.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "quantkit/quantkit.hpp"

int main(int argc, char** argv) {
  const qk::Shape shape{64, 256};
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> w(static_cast<std::size_t>(qk::shape_numel(shape)));
  for (float& v : w) v = dist(rng);
  const qk::TensorView<const float> view(w.data(), shape);

  // INT8, symmetric, one scale per output channel (axis 0): the usual weight format.
  qk::QuantSpec int8 = qk::default_weight_spec(2);
  const qk::QuantParams p8 = qk::choose_qparams<float>(view, int8);
  std::vector<std::int8_t> q8(w.size());
  qk::quantize<float, std::int8_t>(view, p8, q8);
  std::vector<float> back8(w.size());
  qk::dequantize<std::int8_t, float>(qk::TensorView<const std::int8_t>(q8.data(), shape), p8, back8);

  // INT4, symmetric, one scale per group of 32 consecutive weights along each row.
  qk::QuantSpec int4;
  int4.bits = 4;
  int4.granularity = qk::Granularity::kPerGroup;
  int4.group_size = 32;
  std::vector<float> fq4(w.size());
  qk::fake_quantize<float>(view, qk::choose_qparams<float>(view, int4), fq4);

  const qk::ErrorStats e8 = qk::compare(w, back8);
  const qk::ErrorStats e4 = qk::compare(w, fq4);
  std::printf("int8 per-channel: SQNR %.2f dB, max abs error %.3g\n", e8.sqnr_db, e8.max_abs);
  std::printf("int4 group 32:    SQNR %.2f dB, max abs error %.3g\n", e4.sqnr_db, e4.max_abs);

  // Optional: write the INT8 tensor as a quantized .npz that numpy and `qtool inspect` read.
  if (argc > 1) {
    qk::io::NpzWriter writer;
    writer.add<std::int8_t>("q", shape, std::span<const std::int8_t>(q8));
    qk::io::add_quantized_params(writer, {int8, int8.range(), 8, shape, qk::io::DType::kFloat32}, p8);
    writer.write(argv[1]);
    const qk::io::QuantizedFile file = qk::io::read_quantized(argv[1]);
    std::printf("wrote %s: %zu scales, read back %s\n", argv[1], file.params.scale.size(),
                qk::dequantize_to_float(file) == back8 ? "identical" : "DIFFERENT");
  }
  return e8.sqnr_db > 35.0 && e4.sqnr_db > 15.0 ? 0 : 1;
}
