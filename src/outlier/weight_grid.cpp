// Slot-by-slot RTN of a linear layer, with the importance-weighted clip search.
#include "weight_grid.hpp"

#include <algorithm>
#include <cmath>

#include "quantkit/core/error.hpp"
#include "quantkit/core/qparams.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/gemm.hpp"

namespace qk::detail {

SlotGrid slot_grid(std::span<const float> values, const QuantSpec& spec, double clip) {
  float lo = 0, hi = 0;
  for (const float v : values) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const QParams p = choose_qparams(static_cast<float>(lo * clip), static_cast<float>(hi * clip), spec);
  return {p.scale, p.zero_point};
}

std::int8_t quantize_to_grid(float w, const SlotGrid& g, QRange r) {
  return static_cast<std::int8_t>(quantize_value<float>(w, inverse_scale<float>(g.scale), g.zero_point, r));
}

namespace {

// The Hessian clip search of every slot of every row: each trial's error vector is a row of one matrix
// per slot column and row block, scored against the slot's block of H in a single float GEMM (the
// library's FP32 kernel, AVX2+FMA where the CPU has it), the products summed in double. A relative error
// near 1e-6 can only swap clip factors that tie to that precision. Returns the chosen grid per slot.
std::vector<SlotGrid> hessian_clip_search(std::span<const float> w, std::int64_t out, std::int64_t in,
                                          std::int64_t width, const QuantSpec& spec,
                                          const ClipSearch& search) {
  constexpr std::int64_t kRowBlock = 64;
  const QRange r = spec.range();
  const std::int64_t slots = in / width, trials = std::max(0, search.grid + 1);
  std::vector<SlotGrid> chosen(static_cast<std::size_t>(out * slots));
  kernels::Fp32Weights block{width, width,
                             kernels::AlignedVector<float>(static_cast<std::size_t>(width * width))};
  std::vector<float> d, y;
  std::vector<SlotGrid> grids;
  for (std::int64_t slot_index = 0; slot_index < slots; ++slot_index) {
    const std::int64_t start = slot_index * width;
    // diag(scale) H_ss diag(scale): the scaling folded into the block once, not into every trial.
    for (std::int64_t i = 0; i < width; ++i)
      for (std::int64_t j = 0; j < width; ++j) {
        double v = (*search.hessian)(start + i, start + j);
        if (!search.hessian_scale.empty())
          v *= search.hessian_scale[static_cast<std::size_t>(start + i)] *
               search.hessian_scale[static_cast<std::size_t>(start + j)];
        block.values[static_cast<std::size_t>(i * width + j)] = static_cast<float>(v);
      }
    for (std::int64_t first = 0; first < out; first += kRowBlock) {
      const std::int64_t rows = std::min(kRowBlock, out - first), batch = rows * trials;
      d.resize(static_cast<std::size_t>(batch * width));
      y.resize(d.size());
      grids.resize(static_cast<std::size_t>(batch));
      for (std::int64_t row = 0; row < rows; ++row) {
        const std::span<const float> slot =
            w.subspan(static_cast<std::size_t>((first + row) * in + start), static_cast<std::size_t>(width));
        for (std::int64_t k = 0; k < trials; ++k) {
          const double clip =
              1.0 - (1.0 - search.min_clip) * static_cast<double>(k) / std::max(1, search.grid);
          const SlotGrid g = slot_grid(slot, spec, clip);
          const std::int64_t t = row * trials + k;
          grids[static_cast<std::size_t>(t)] = g;
          for (std::int64_t j = 0; j < width; ++j) {
            const float v = slot[static_cast<std::size_t>(j)];
            d[static_cast<std::size_t>(t * width + j)] =
                v - dequantize_value<float>(quantize_to_grid(v, g, r), g.scale, g.zero_point);
          }
        }
      }
      kernels::gemm(d, batch, block, y);  // y = d H_ss^T = d H_ss
      for (std::int64_t row = 0; row < rows; ++row) {
        double best_err = INFINITY;
        SlotGrid best = slot_grid(
            w.subspan(static_cast<std::size_t>((first + row) * in + start), static_cast<std::size_t>(width)),
            spec);
        for (std::int64_t k = 0; k < trials; ++k) {
          const std::int64_t t = row * trials + k;
          double err = 0;
          for (std::int64_t j = 0; j < width; ++j)
            err += static_cast<double>(d[static_cast<std::size_t>(t * width + j)]) *
                   static_cast<double>(y[static_cast<std::size_t>(t * width + j)]);
          if (err < best_err) {  // strict: the wider range wins ties
            best_err = err;
            best = grids[static_cast<std::size_t>(t)];
          }
        }
        chosen[static_cast<std::size_t>((first + row) * slots + slot_index)] = best;
      }
    }
  }
  return chosen;
}

}  // namespace

QuantizedLinear empty_layer(std::int64_t out, std::int64_t in, const QuantSpec& spec, bool with_values) {
  QuantizedLinear q;
  q.out = out;
  q.in = in;
  q.params.spec = spec;
  q.codes.assign(static_cast<std::size_t>(out * in), 0);
  if (with_values) q.dequantized.assign(static_cast<std::size_t>(out * in), 0.0f);
  return q;
}

QuantizedLinear rtn_linear(std::span<const float> w, std::int64_t out, std::int64_t in, const QuantSpec& spec,
                           const ClipSearch& search) {
  QuantizedLinear q = empty_layer(out, in, spec);
  const QRange r = spec.range();
  const std::int64_t width = spec.granularity == Granularity::kPerGroup ? spec.group_size : in;
  if (search.hessian && (search.hessian->rows() != in || search.hessian->cols() != in))
    throw Error("clip search: the Hessian is not " + std::to_string(in) + " x " + std::to_string(in));
  if (!search.hessian_scale.empty() && static_cast<std::int64_t>(search.hessian_scale.size()) != in)
    throw Error("clip search: " + std::to_string(search.hessian_scale.size()) + " Hessian scales for " +
                std::to_string(in) + " inputs");
  const std::vector<SlotGrid> by_hessian =
      search.hessian ? hessian_clip_search(w, out, in, width, spec, search) : std::vector<SlotGrid>{};
  const std::int64_t slots = in / width;
  for (std::int64_t row = 0; row < out; ++row) {
    for (std::int64_t start = 0; start < in; start += width) {
      const std::size_t base = static_cast<std::size_t>(row * in + start);
      const std::span<const float> slot = w.subspan(base, static_cast<std::size_t>(width));
      SlotGrid best = slot_grid(slot, spec);
      if (search.hessian) {
        best = by_hessian[static_cast<std::size_t>(row * slots + start / width)];
      } else if (search.active()) {
        double best_err = INFINITY;
        for (int k = 0; k <= search.grid; ++k) {
          const double clip = 1.0 - (1.0 - search.min_clip) * k / std::max(1, search.grid);
          const SlotGrid g = slot_grid(slot, spec, clip);
          double err = 0;
          for (std::size_t j = 0; j < slot.size(); ++j) {
            const double e = static_cast<double>(slot[j]) -
                             dequantize_value<float>(quantize_to_grid(slot[j], g, r), g.scale, g.zero_point);
            err += search.importance[static_cast<std::size_t>(start) + j] * e * e;
          }
          if (err < best_err) {
            best_err = err;
            best = g;
          }
        }
      }
      q.params.scale.push_back(best.scale);
      q.params.zero_point.push_back(best.zero_point);
      for (std::size_t j = 0; j < slot.size(); ++j) {
        q.codes[base + j] = quantize_to_grid(slot[j], best, r);
        q.dequantized[base + j] = dequantize_value<float>(q.codes[base + j], best.scale, best.zero_point);
      }
    }
  }
  return q;
}

QuantizedLinear scaled_rtn(std::span<const float> w, std::int64_t out, std::int64_t in,
                           std::span<const double> s, const QuantSpec& spec, const ClipSearch& search,
                           const RowBlockFn& each, bool keep_values) {
  constexpr std::int64_t kRowBlock = 256;
  const bool scaled_by_s = !s.empty();
  std::vector<float> sf(s.size());
  for (std::size_t c = 0; c < s.size(); ++c) sf[c] = static_cast<float>(s[c]);
  QuantizedLinear q = empty_layer(out, in, spec, keep_values);
  std::vector<float> scaled;
  for (std::int64_t first = 0; first < out; first += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, out - first);
    const auto base = static_cast<std::size_t>(first * in);
    const std::span<const float> w_rows = w.subspan(base, static_cast<std::size_t>(rows * in));
    if (scaled_by_s) {
      scaled.resize(static_cast<std::size_t>(rows * in));
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < in; ++c) {
          const auto k = static_cast<std::size_t>(r * in + c);
          scaled[k] = w_rows[k] * sf[static_cast<std::size_t>(c)];
        }
    }
    QuantizedLinear part =
        rtn_linear(scaled_by_s ? std::span<const float>(scaled) : w_rows, rows, in, spec, search);
    std::copy(part.codes.begin(), part.codes.end(), q.codes.begin() + static_cast<std::ptrdiff_t>(base));
    if (scaled_by_s)
      for (std::size_t k = 0; k < part.dequantized.size(); ++k)
        part.dequantized[k] /= sf[k % static_cast<std::size_t>(in)];
    if (each) each(first, rows, part.dequantized);
    if (keep_values)
      std::copy(part.dequantized.begin(), part.dequantized.end(),
                q.dequantized.begin() + static_cast<std::ptrdiff_t>(base));
    q.params.scale.insert(q.params.scale.end(), part.params.scale.begin(), part.params.scale.end());
    q.params.zero_point.insert(q.params.zero_point.end(), part.params.zero_point.begin(),
                               part.params.zero_point.end());
  }
  if (scaled_by_s) q.input_scale = std::move(sf);
  return q;
}

}  // namespace qk::detail
