// A model against its original, tensor by tensor (files/model_compare.hpp).
#include "quantkit/files/model_compare.hpp"

#include <algorithm>
#include <cmath>

#include "model_tensors.hpp"
#include "quantkit/core/error.hpp"

namespace qk {

ModelComparison compare_model(const std::string& model, const std::string& reference) {
  const detail::ModelTensors m = detail::open_model_tensors(model);
  const detail::ModelTensors ref = detail::open_model_tensors(reference);
  ModelComparison out;
  ErrorAccumulator all;
  std::vector<float> a, b;
  for (const detail::ModelTensor& t : m.tensors) {
    const detail::ModelTensor* r = ref.find(t.name);
    if (!r) throw Error(t.where + ": no tensor of that name in " + reference);
    if (r->ne != t.ne)
      throw Error(t.where + ": shape " + shape_string(Shape(t.ne.rbegin(), t.ne.rend())) +
                  ", the reference's " + shape_string(Shape(r->ne.rbegin(), r->ne.rend())));
    ErrorAccumulator acc;
    const std::int64_t n = t.row_length(), rows = t.row_count();
    const std::int64_t chunk = detail::rows_per_chunk(n);
    for (std::int64_t first = 0; n > 0 && first < rows; first += chunk) {
      const std::int64_t count = std::min(chunk, rows - first);
      a.resize(static_cast<std::size_t>(count * n));
      b.resize(a.size());
      try {
        t.read_rows(first, count, a.data());
        r->read_rows(first, count, b.data());
      } catch (const Error& e) {
        throw Error(t.where + ": " + e.what());
      }
      acc.add(b, a);
      all.add(b, a);
    }
    ModelTensorError e;
    e.name = t.name;
    e.shape = Shape(t.ne.rbegin(), t.ne.rend());
    e.type = t.from;
    e.bytes = t.bytes;
    e.bits_per_weight = t.numel() ? 8.0 * static_cast<double>(t.bytes) / static_cast<double>(t.numel()) : 0.0;
    e.error = acc.result();
    e.relative_rmse = relative_rmse(e.error);
    out.tensors.push_back(std::move(e));
  }
  for (const detail::ModelTensor& r : ref.tensors)
    if (!m.find(r.name)) out.reference_only.push_back(r.name);
  out.total = all.result();
  out.relative_rmse = relative_rmse(out.total);
  return out;
}

}  // namespace qk
