// Importance (llama.cpp's imatrix) from an imatrix GGUF or an .npz of importances or activations
// (files/gguf_quant.hpp, read_importance).
#include <cmath>
#include <cstring>

#include "quantkit/core/error.hpp"
#include "quantkit/files/gguf_quant.hpp"
#include "quantkit/io/gguf.hpp"
#include "quantkit/io/npz.hpp"

namespace qk {

namespace {

constexpr const char* kSums = ".in_sum2";
constexpr const char* kCounts = ".counts";

std::vector<float> f32_values(const io::GgufTensor& t, const std::string& where) {
  if (t.type != io::kGgmlF32) throw Error(where + ": expected F32, got " + io::ggml_type_info(t.type)->name);
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(float));  // GGUF is little-endian, as is x86-64
  return v;
}

void check_values(const std::vector<float>& v, const std::string& where) {
  for (const float x : v)
    if (!std::isfinite(x) || x < 0) throw Error(where + ": importance values must be finite and >= 0");
}

// llama-imatrix's GGUF: NAME.in_sum2 [columns, matrices] and NAME.counts [1, matrices].
ImportanceMap from_imatrix_gguf(const std::string& path) {
  const io::GgufFile f = io::GgufFile::open(path);
  std::map<std::string, const io::GgufTensor*> by_name;
  for (const io::GgufTensor& t : f.tensors()) by_name[t.name] = &t;
  ImportanceMap out;
  for (const io::GgufTensor& t : f.tensors()) {
    if (!t.name.ends_with(kSums)) continue;
    const std::string name = t.name.substr(0, t.name.size() - std::strlen(kSums));
    const std::string where = path + ":" + t.name;
    const auto counts_it = by_name.find(name + kCounts);
    if (counts_it == by_name.end()) throw Error(where + ": no " + name + kCounts + " beside it");
    if (t.ne.empty() || t.ne.size() > 2) throw Error(where + ": expected [columns, matrices]");
    const std::int64_t columns = t.ne[0], matrices = t.ne.size() == 2 ? t.ne[1] : 1;
    const std::vector<float> sums = f32_values(t, where);
    const std::vector<float> counts = f32_values(*counts_it->second, path + ":" + name + kCounts);
    if (static_cast<std::int64_t>(counts.size()) != matrices)
      throw Error(path + ":" + name + kCounts + ": " + std::to_string(counts.size()) + " counts for " +
                  std::to_string(matrices) + " matrices");
    check_values(sums, where);
    check_values(counts, path + ":" + name + kCounts);
    TensorImportance imp;
    imp.columns = columns;
    imp.values.resize(sums.size());
    for (std::int64_t m = 0; m < matrices; ++m)
      for (std::int64_t j = 0; j < columns; ++j) {
        const std::size_t k = static_cast<std::size_t>(m * columns + j);
        // A matrix no token reached (an expert never routed to) weighs every column alike.
        imp.values[k] =
            counts[static_cast<std::size_t>(m)] > 0 ? sums[k] / counts[static_cast<std::size_t>(m)] : 1.0f;
      }
    out.emplace(name, std::move(imp));
  }
  if (out.empty())
    throw Error(path + ": no NAME" + kSums + " tensors (not an imatrix file from llama-imatrix)");
  return out;
}

// .npz: a 1-D member NAME is the importance itself; a member of higher rank is activations
// [..., columns], whose per-column mean of squares is.
ImportanceMap from_npz(const std::string& path) {
  ImportanceMap out;
  for (const std::string& name : io::npz_names(path)) {
    const io::NpyArray a = io::read_npz_member(path, name);
    const std::string where = path + ":" + name;
    if (!io::dtype_is_float(a.dtype()))
      throw Error(where + ": expected a float array, got " + io::dtype_name(a.dtype()));
    if (a.shape().empty() || a.numel() == 0) throw Error(where + ": empty or 0-d array");
    const std::vector<double> v = a.to_vector<double>();
    TensorImportance imp;
    imp.columns = a.shape().back();
    if (a.shape().size() >= 2) {
      imp.values.assign(static_cast<std::size_t>(imp.columns), 0.0f);
      std::vector<double> sums(static_cast<std::size_t>(imp.columns), 0.0);
      const std::int64_t rows = a.numel() / imp.columns;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < imp.columns; ++j) {
          const double x = v[static_cast<std::size_t>(r * imp.columns + j)];
          if (!std::isfinite(x)) throw Error(where + ": activations must be finite");
          sums[static_cast<std::size_t>(j)] += x * x;
        }
      for (std::int64_t j = 0; j < imp.columns; ++j)
        imp.values[static_cast<std::size_t>(j)] =
            static_cast<float>(sums[static_cast<std::size_t>(j)] / static_cast<double>(rows));
    } else {
      imp.values.assign(v.begin(), v.end());
      check_values(imp.values, where);
    }
    out.emplace(name, std::move(imp));
  }
  if (out.empty()) throw Error(path + ": no arrays");
  return out;
}

}  // namespace

ImportanceMap read_importance(const std::string& path) {
  if (path.ends_with(".gguf")) return from_imatrix_gguf(path);
  if (path.ends_with(".npz")) return from_npz(path);
  throw Error(path + ": importance must be an imatrix .gguf (llama-imatrix) or an .npz");
}

}  // namespace qk
