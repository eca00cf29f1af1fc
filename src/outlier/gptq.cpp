// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022): quantize W column by column; after each column,
// spread its rounding error over the columns not yet quantized through the upper Cholesky factor U of
// the dampened inverse Hessian (H^-1 = U^T U). Lazy batches: inside a block of columns the update is
// rank one per column; the rest of the matrix gets the block's errors in one product at the block's end.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "quantkit/core/error.hpp"
#include "quantkit/core/quantize.hpp"
#include "weight_grid.hpp"

namespace qk::detail {

namespace {

// U upper triangular with U^T U = H^-1, without forming H^-1: with J the index reversal, J H J = L L^T
// (Cholesky), so H = R R^T with R = J L J upper triangular, and U = R^-1.
Eigen::MatrixXf inverse_cholesky_upper(const Eigen::MatrixXd& h) {
  const Eigen::Index n = h.rows();
  const Eigen::MatrixXd flipped = h.reverse();  // J H J: both index orders reversed
  const Eigen::LLT<Eigen::MatrixXd> llt(flipped);
  if (llt.info() != Eigen::Success)
    throw Error(
        "gptq: the Hessian is not positive definite even after dampening (raise the dampening, or "
        "calibrate with more, more varied activations)");
  const Eigen::MatrixXd r = Eigen::MatrixXd(llt.matrixL()).reverse();  // J L J: upper triangular
  // The inverse in double (H is accumulated in double to keep its small eigenvalues); the column loop
  // then runs in float32, as the reference does.
  Eigen::MatrixXd u = Eigen::MatrixXd::Identity(n, n);
  r.triangularView<Eigen::Upper>().solveInPlace(u);
  if (!u.allFinite()) throw Error("gptq: the Hessian is too ill-conditioned to invert");
  return u.cast<float>();
}

}  // namespace

QuantizedLinear gptq_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                            Eigen::MatrixXd hessian, const QuantSpec& spec,
                            const WeightQuantOptions& options) {
  if (hessian.rows() != in || hessian.cols() != in) throw Error("gptq: the Hessian does not match the layer");
  if (!(options.damp >= 0)) throw Error("gptq: dampening must be >= 0");
  const std::int64_t group = spec.granularity == Granularity::kPerGroup ? spec.group_size : 0;
  const std::int64_t groups_per_row = group > 0 ? in / group : 1;
  // Blocks hold whole groups, so a group's parameters are always taken from its current, fully
  // compensated weights.
  std::int64_t block = std::max<std::int64_t>(1, options.block_size);
  if (group > 0) block = (std::max(block, group) + group - 1) / group * group;
  const QRange range = spec.range();

  Eigen::MatrixXf wm(out, in);
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t c = 0; c < in; ++c) wm(r, c) = w[static_cast<std::size_t>(r * in + c)];
  // An input channel the calibration data never activated: H(c, c) = 1 keeps the Cholesky defined and
  // decouples the column. The reference zeroes such weights; here they are kept and quantized as RTN
  // would, since inputs the calibration set missed may still occur.
  for (std::int64_t c = 0; c < in; ++c) {
    if (hessian(c, c) == 0) hessian(c, c) = 1;
  }
  std::vector<std::int64_t> perm(static_cast<std::size_t>(in));
  std::iota(perm.begin(), perm.end(), 0);
  if (options.act_order) {
    std::stable_sort(perm.begin(), perm.end(),
                     [&](std::int64_t a, std::int64_t b) { return hessian(a, a) > hessian(b, b); });
  }

  std::vector<SlotGrid> grids(static_cast<std::size_t>(out * groups_per_row));
  auto grid_of = [&](std::int64_t row, std::int64_t col) -> SlotGrid& {
    return grids[static_cast<std::size_t>(row * groups_per_row + (group > 0 ? col / group : 0))];
  };
  // Parameters fixed before any update: per channel always; per group under act-order (static groups).
  if (group == 0 || options.act_order) {
    std::vector<float> slot(static_cast<std::size_t>(group > 0 ? group : in));
    for (std::int64_t r = 0; r < out; ++r) {
      for (std::int64_t g = 0; g < groups_per_row; ++g) {
        for (std::size_t j = 0; j < slot.size(); ++j)
          slot[j] = wm(r, g * (group > 0 ? group : in) + static_cast<std::int64_t>(j));
        grids[static_cast<std::size_t>(r * groups_per_row + g)] = slot_grid(slot, spec);
      }
    }
  }

  Eigen::MatrixXf wp(out, in);
  Eigen::MatrixXd hp(in, in);
  for (std::int64_t i = 0; i < in; ++i) {
    wp.col(i) = wm.col(perm[static_cast<std::size_t>(i)]);
    for (std::int64_t j = 0; j < in; ++j)
      hp(i, j) = hessian(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);
  }
  hp.diagonal().array() += options.damp * hp.diagonal().mean();
  hessian.resize(0, 0);  // freed: hp holds the permuted copy
  const Eigen::MatrixXf u = inverse_cholesky_upper(hp);
  hp.resize(0, 0);
  // The inverse takes about the time of a tenth of the columns; the columns' blocks share the rest.
  constexpr double kInverseShare = 0.1;
  if (options.progress) options.progress(kInverseShare);

  QuantizedLinear q = empty_layer(out, in, spec);
  std::vector<float> slot(static_cast<std::size_t>(std::max<std::int64_t>(group, 1)));
  for (std::int64_t i1 = 0; i1 < in; i1 += block) {
    const std::int64_t i2 = std::min(i1 + block, in);
    const std::int64_t count = i2 - i1;
    Eigen::MatrixXf w1 = wp.middleCols(i1, count);
    Eigen::MatrixXf err1(out, count);
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t col = i1 + i;
      const std::int64_t orig = perm[static_cast<std::size_t>(col)];
      if (group > 0 && !options.act_order && orig % group == 0) {
        for (std::int64_t r = 0; r < out; ++r) {
          for (std::int64_t j = 0; j < group; ++j) slot[static_cast<std::size_t>(j)] = w1(r, i + j);
          grid_of(r, orig) = slot_grid(slot, spec);
        }
      }
      const float d = u(col, col);
      for (std::int64_t r = 0; r < out; ++r) {
        const SlotGrid& g = grid_of(r, orig);
        const std::int8_t code = quantize_to_grid(w1(r, i), g, range);
        const float back = dequantize_value<float>(code, g.scale, g.zero_point);
        const auto k = static_cast<std::size_t>(r * in + orig);
        q.codes[k] = code;
        q.dequantized[k] = back;
        err1(r, i) = (w1(r, i) - back) / d;
      }
      if (i + 1 < count)
        w1.rightCols(count - i - 1).noalias() -= err1.col(i) * u.block(col, col + 1, 1, count - i - 1);
    }
    if (i2 < in) wp.rightCols(in - i2).noalias() -= err1 * u.block(i1, i2, count, in - i2);
    if (options.progress)
      options.progress(kInverseShare +
                       (1 - kInverseShare) * static_cast<double>(i2) / static_cast<double>(in));
  }
  for (const SlotGrid& g : grids) {
    q.params.scale.push_back(g.scale);
    q.params.zero_point.push_back(g.zero_point);
  }
  return q;
}

}  // namespace qk::detail
