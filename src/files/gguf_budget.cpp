// GGUF types under a size budget: measured errors, then mixed/selection.hpp's exact knapsack.
#include "gguf_budget.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "quantkit/core/error.hpp"
#include "quantkit/kernels/parallel.hpp"
#include "quantkit/mixed/selection.hpp"

namespace qk::detail {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::uint64_t pad(std::uint64_t n, std::uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

bool pinned_by_pattern(const std::string& name, const GgufQuantOptions& options) {
  return std::any_of(options.tensor_types.begin(), options.tensor_types.end(),
                     [&](const auto& p) { return fnmatch(p.first.c_str(), name.c_str(), 0) == 0; });
}

// Summed squared error of each candidate on the tensor (weighted per column by its importance), and the
// weighted signal energy, reading the tensor once in chunks of rows; candidates run on `threads` threads.
std::vector<double> measure(const ModelTensor& s, const std::vector<ggml::Type>& candidates,
                            const TensorImportance* importance, int threads, double& signal,
                            const std::function<void(std::int64_t)>& rows_done) {
  const std::int64_t n = s.row_length(), rows = s.row_count();
  std::vector<double> errors(candidates.size(), 0.0);
  signal = 0;
  if (n == 0 || rows == 0) return errors;
  const std::int64_t chunk = rows_per_chunk(n);
  std::vector<float> x;
  for (std::int64_t first = 0; first < rows; first += chunk) {
    const std::int64_t count = std::min(chunk, rows - first);
    x.resize(static_cast<std::size_t>(count * n));
    s.read_rows(first, count, x.data());
    for (std::int64_t r = 0; r < count; ++r) {
      const float* w = row_importance(importance, s, first + r);
      const float* xr = x.data() + r * n;
      double e = 0;
      for (std::int64_t j = 0; j < n; ++j) e += (w ? w[j] : 1.0) * static_cast<double>(xr[j]) * xr[j];
      signal += e;
    }
    kernels::parallel_for(
        static_cast<std::int64_t>(candidates.size()), threads, 1, [&](std::int64_t c0, std::int64_t c1) {
          std::vector<std::byte> q;
          std::vector<float> y(static_cast<std::size_t>(n));
          for (std::int64_t c = c0; c < c1; ++c) {
            const ggml::Type t = candidates[static_cast<std::size_t>(c)];
            q.resize(static_cast<std::size_t>(ggml::row_bytes(t, n)));
            double sum = 0;
            for (std::int64_t r = 0; r < count; ++r) {
              const float* w = row_importance(importance, s, first + r);
              const float* xr = x.data() + r * n;
              ggml::quantize_row(t, xr, n, q.data(), w);
              ggml::dequantize_row(t, q.data(), n, y.data());
              for (std::int64_t j = 0; j < n; ++j) {
                const double d = static_cast<double>(xr[j]) - y[static_cast<std::size_t>(j)];
                sum += (w ? w[j] : 1.0) * d * d;
              }
            }
            errors[static_cast<std::size_t>(c)] += sum;
          }
        });
    rows_done(count);
  }
  return errors;
}

}  // namespace

void plan_within_budget(const ModelTensors& m, const GgufQuantOptions& options,
                        const io::GgufWriter::Layout& layout, GgufQuantReport& report,
                        const ProgressFn& progress) {
  const GgufBudget& budget = options.budget;
  if (!std::isfinite(budget.value) || budget.value <= 0)
    throw Error("budget: the value must be a positive number, not " + number(budget.value));
  const std::vector<ggml::Type> candidates =
      budget.candidates.empty() ? default_budget_candidates() : budget.candidates;
  for (const ggml::Type t : candidates)
    if (!ggml::traits(t).can_quantize)
      throw Error("budget: quantkit cannot write candidate type " + std::string(ggml::traits(t).name));
  const bool file_bytes = budget.kind == GgufBudgetKind::kFileBytes;
  const auto cost = [&](ggml::Type t, const ModelTensor& s) {
    const std::uint64_t bytes = io::ggml_tensor_bytes(static_cast<std::uint32_t>(t), s.ne);
    return file_bytes ? pad(bytes, layout.alignment) : bytes;
  };
  const int threads = thread_count(options.threads);

  // Which tensors the plan chooses for, and the work of measuring them (weights x candidates).
  std::vector<std::vector<ggml::Type>> fitting(m.tensors.size());
  std::uint64_t total_work = 0, weights = 0;
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    const ModelTensor& s = m.tensors[i];
    weights += static_cast<std::uint64_t>(s.numel());
    if (s.ne.size() < 2 || pinned_by_pattern(s.name, options)) continue;
    for (const ggml::Type t : candidates)
      if (s.row_length() % ggml::traits(t).block_weights == 0) fitting[i].push_back(t);
    total_work += static_cast<std::uint64_t>(s.numel()) * fitting[i].size();
  }

  std::vector<LayerSensitivity> layers;
  std::uint64_t work_done = 0;
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    const ModelTensor& s = m.tensors[i];
    GgufTensorReport& r = report.tensors[i];
    LayerSensitivity layer;
    layer.name = s.name;
    layer.shape = r.shape;
    layer.weights = static_cast<std::uint64_t>(s.numel());
    if (fitting[i].empty()) {  // fixed: rank 1, a pattern, or rows no candidate's block divides
      layer.pinned_by = r.note.empty() ? "fixed" : r.note;
      CandidateCost c;
      c.bytes = cost(r.to, s);
      layer.options.push_back(c);
      layers.push_back(std::move(layer));
      continue;
    }
    const TensorImportance* importance = find_importance(s, options.importance);
    std::vector<double> errors;
    try {
      errors = measure(s, fitting[i], importance, threads, r.signal, [&](std::int64_t rows) {
        work_done += static_cast<std::uint64_t>(rows * s.row_length()) * fitting[i].size();
        if (progress && total_work)
          progress(static_cast<double>(work_done) / static_cast<double>(total_work));
      });
    } catch (const Error& e) {
      throw Error(s.where + ": " + e.what());
    }
    r.note.clear();  // a fallback from the requested type does not apply: the budget chooses
    for (std::size_t c = 0; c < fitting[i].size(); ++c) {
      r.candidate_errors.emplace_back(fitting[i][c], errors[c]);
      CandidateCost cc;
      cc.bytes = cost(fitting[i][c], s);
      cc.error = errors[c];
      layer.options.push_back(cc);
    }
    layers.push_back(std::move(layer));
  }

  // The budget in bytes of what the options count.
  const auto describe = [&](double bytes) {
    return file_bytes
               ? std::to_string(static_cast<std::uint64_t>(bytes + static_cast<double>(layout.data_offset))) +
                     " file bytes"
               : number(8.0 * bytes / static_cast<double>(std::max<std::uint64_t>(1, weights))) +
                     " bits/weight";
  };
  double limit = file_bytes ? budget.value - static_cast<double>(layout.data_offset)
                            : std::floor(budget.value * static_cast<double>(weights) / 8.0);
  double smallest = 0;
  for (const LayerSensitivity& l : layers) {
    std::uint64_t least = UINT64_MAX;
    for (const CandidateCost& c : l.options) least = std::min(least, c.bytes);
    smallest += static_cast<double>(least);
  }
  if (limit < smallest)
    throw Error("budget: " +
                (file_bytes ? std::to_string(static_cast<std::uint64_t>(budget.value)) + " file bytes"
                            : number(budget.value) + " bits/weight") +
                " is below the smallest these candidates reach, " + describe(smallest) +
                " (every tensor in its smallest candidate)");
  const Selection sel = select_formats(layers, Budget{BudgetKind::kBytes, limit});
  for (std::size_t i = 0; i < m.tensors.size(); ++i)
    if (!fitting[i].empty()) report.tensors[i].to = fitting[i][sel.choice[i]];
  report.total_error = sel.error;
  report.budget_bytes = static_cast<std::uint64_t>(file_bytes ? budget.value : limit);
}

}  // namespace qk::detail
