// Output error through the input Gram matrix (mixed/output_error.hpp).
#include "quantkit/mixed/output_error.hpp"

#include <cmath>
#include <string>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {

std::size_t gram_side(std::span<const double> gram) {
  const auto in = static_cast<std::size_t>(std::llround(std::sqrt(static_cast<double>(gram.size()))));
  if (in * in != gram.size() || in == 0)
    throw Error("an input Gram matrix of " + std::to_string(gram.size()) + " entries is not square");
  return in;
}

// d^T G d for one row d (length in) = sum_i d_i (G_ii d_i + 2 sum_{j<i} G_ij d_j): G is symmetric, so
// the lower triangle is enough (half the multiply-adds). Four partial sums let the inner loop pipeline.
double quadratic_form(const double* d, std::span<const double> gram, std::size_t in) {
  double total = 0;
  for (std::size_t i = 0; i < in; ++i) {
    if (d[i] == 0) continue;
    const double* g = gram.data() + i * in;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t j = 0;
    for (; j + 4 <= i; j += 4) {
      s0 += g[j] * d[j];
      s1 += g[j + 1] * d[j + 1];
      s2 += g[j + 2] * d[j + 2];
      s3 += g[j + 3] * d[j + 3];
    }
    for (; j < i; ++j) s0 += g[j] * d[j];
    total += d[i] * (g[i] * d[i] + 2 * ((s0 + s1) + (s2 + s3)));
  }
  return total;
}

}  // namespace

std::vector<double> input_gram(std::span<const float> inputs, std::int64_t features) {
  if (features <= 0 || inputs.size() % static_cast<std::size_t>(features) != 0)
    throw Error("inputs of " + std::to_string(inputs.size()) + " values are not rows of " +
                std::to_string(features) + " features");
  const auto in = static_cast<std::size_t>(features);
  std::vector<double> gram(in * in, 0.0);
  std::vector<double> x(in);
  for (std::size_t r = 0; r < inputs.size() / in; ++r) {
    for (std::size_t i = 0; i < in; ++i) x[i] = inputs[r * in + i];
    // The lower triangle only; mirrored below.
    for (std::size_t i = 0; i < in; ++i) {
      if (x[i] == 0) continue;
      double* g = gram.data() + i * in;
      for (std::size_t j = 0; j <= i; ++j) g[j] += x[i] * x[j];
    }
  }
  for (std::size_t i = 0; i < in; ++i)
    for (std::size_t j = 0; j < i; ++j) gram[j * in + i] = gram[i * in + j];
  return gram;
}

double output_error(std::span<const float> weights, std::span<const float> approx,
                    std::span<const double> gram) {
  const std::size_t in = gram_side(gram);
  if (weights.size() % in != 0 || approx.size() != weights.size())
    throw Error("weights of " + std::to_string(weights.size()) + " values are not rows of " +
                std::to_string(in) + " inputs");
  std::vector<double> d(in);
  double total = 0;
  for (std::size_t r = 0; r < weights.size() / in; ++r) {
    for (std::size_t i = 0; i < in; ++i)
      d[i] = static_cast<double>(weights[r * in + i]) - static_cast<double>(approx[r * in + i]);
    total += quadratic_form(d.data(), gram, in);
  }
  return std::max(0.0, total);  // G is positive semi-definite; rounding may dip below 0
}

double output_energy(std::span<const float> weights, std::span<const double> gram) {
  const std::vector<float> zeros(weights.size(), 0.0f);
  return output_error(weights, zeros, gram);
}

}  // namespace qk
