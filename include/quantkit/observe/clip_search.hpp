// Clip ranges from a histogram: percentile, entropy (TensorRT's KL search) and mse. Each returns a range
// that contains 0 (the min/max rule of golden README rule 2 widens every range to 0 anyway) and is turned
// into a scale and zero point by the same choose_qparams as the min/max observer.
#pragma once

#include "quantkit/core/qparams.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/observe/histogram.hpp"

namespace qk {

struct ClipRange {
  float lo = 0.0f;
  float hi = 0.0f;
};

// The observed range widened to 0: what min/max calibration uses.
ClipRange minmax_clip(const Histogram& h);

// Percentile P in (0, 100]. Symmetric schemes clip |x| at its P-th percentile; affine schemes clip the
// lower tail at the (100 - P)-th percentile and the upper tail at the P-th. Each bound lies within one
// bin width (Histogram::bin_width) of the exact order statistic (see Histogram::quantile).
ClipRange percentile_clip(const Histogram& h, double percentile, const QuantSpec& spec);

// TensorRT's entropy calibration: over thresholds t on a histogram of |x|, the reference distribution P
// is the bins below t with everything beyond folded into the last bin, Q is those bins merged into the
// quantized levels and spread back over their non-empty bins, and t minimises KL(P || Q). The number of
// levels is the codes on one side of zero: 2^(bits-1) for data of both signs, 2^bits for an affine
// scheme on non-negative data. The range is then [-t, t] cut to the observed range.
ClipRange entropy_clip(const Histogram& h, const QuantSpec& spec);

// The range whose scale and zero point minimise the expected squared quantization error of the
// histogram's data (values spread uniformly within each bin, rounding and clamping exactly as
// quantize() does). Symmetric: a scan over the threshold; affine: alternate scans over the upper and the
// lower bound until neither improves. The observed range is always a candidate, so the expected error
// never exceeds min/max calibration's.
ClipRange mse_clip(const Histogram& h, const QuantSpec& spec);

// Expected squared error per value when the histogram's data is quantized with p over range r.
double expected_quant_mse(const Histogram& h, const QParams& p, QRange r);

// The fraction of values that quantization with p over r saturates (the rounded code falls outside r:
// more than half a step beyond the grid), read from the histogram.
double clipped_fraction(const Histogram& h, const QParams& p, QRange r);

}  // namespace qk
