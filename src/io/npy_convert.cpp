// .npy data to C-order native values of any numeric type (NpyArray::to_vector): byte swapping, Fortran
// order, and numpy's astype casting rules.
#include <cmath>
#include <limits>

#include "npy_internal.hpp"

namespace qk::io {

using detail::load;

namespace {

// double -> float rounded to odd: converting that to half then rounds like a direct double -> half
// conversion (float keeps more than 11 + 2 bits), where double -> float -> half could round twice.
float round_to_odd_float(double d) {
  float f = static_cast<float>(d);
  if (std::isnan(d) || static_cast<double>(f) == d) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) | 1u);
}

// Float -> integer as C truncation, but defined everywhere: NaN -> 0, out of range -> the nearest limit.
template <class T>
T saturate_cast(double v) {
  if (std::isnan(v)) return 0;
  if (v < static_cast<double>(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
  if (v >= std::ldexp(1.0, std::numeric_limits<T>::digits)) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

template <class T, class Src>
T convert_value(Src v) {
  if constexpr (std::is_same_v<T, Src>) {
    return v;
  } else if constexpr (std::is_same_v<Src, half>) {
    return convert_value<T>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_same_v<Src, bool>) {
    return convert_value<T>(static_cast<std::uint8_t>(v ? 1 : 0));
  } else if constexpr (std::is_same_v<T, half>) {
    if constexpr (std::is_same_v<Src, float>)
      return half(v);
    else
      return half(round_to_odd_float(static_cast<double>(v)));  // integers above 2^53 overflow half anyway
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<Src>) {
    return saturate_cast<T>(static_cast<double>(v));
  } else {
    return static_cast<T>(v);  // integer -> integer wraps modulo 2^n, as numpy's astype does
  }
}

template <class Src, class T>
void convert_all(const NpyHeader& header, std::span<const std::byte> raw, std::vector<T>& out) {
  const std::size_t n = out.size();
  const bool swap = header.big_endian;
  std::size_t non_unit_dims = 0;
  for (const std::int64_t d : header.shape) non_unit_dims += d > 1 ? 1 : 0;
  if (!header.fortran_order || non_unit_dims <= 1) {
    if constexpr (std::is_same_v<Src, T> && !std::is_same_v<T, bool>) {
      if (!swap) {
        if (n != 0) std::memcpy(out.data(), raw.data(), n * sizeof(T));
        return;
      }
    }
    for (std::size_t i = 0; i < n; ++i) out[i] = convert_value<T>(load<Src>(raw.data(), i, swap));
    return;
  }
  // Fortran order: walk the C-order index and keep the matching Fortran offset up to date.
  const std::size_t rank = header.shape.size();
  std::vector<std::size_t> fortran_stride(rank), index(rank, 0);
  std::size_t stride = 1;
  for (std::size_t k = 0; k < rank; ++k) {
    fortran_stride[k] = stride;
    stride *= static_cast<std::size_t>(header.shape[k]);
  }
  std::size_t src = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = convert_value<T>(load<Src>(raw.data(), src, swap));
    for (std::size_t k = rank; k-- > 0;) {
      src += fortran_stride[k];
      if (++index[k] < static_cast<std::size_t>(header.shape[k])) break;
      src -= fortran_stride[k] * index[k];
      index[k] = 0;
    }
  }
}

}  // namespace

template <class T>
std::vector<T> NpyArray::to_vector() const {
  if (header_.dtype == DType::kUnicode) throw Error(name_ + ": a unicode string array has no numeric values");
  std::vector<T> out(static_cast<std::size_t>(header_.numel));
  switch (header_.dtype) {
    case DType::kFloat16:
      convert_all<half>(header_, raw_, out);
      break;
    case DType::kFloat32:
      convert_all<float>(header_, raw_, out);
      break;
    case DType::kFloat64:
      convert_all<double>(header_, raw_, out);
      break;
    case DType::kInt8:
      convert_all<std::int8_t>(header_, raw_, out);
      break;
    case DType::kUint8:
      convert_all<std::uint8_t>(header_, raw_, out);
      break;
    case DType::kInt16:
      convert_all<std::int16_t>(header_, raw_, out);
      break;
    case DType::kUint16:
      convert_all<std::uint16_t>(header_, raw_, out);
      break;
    case DType::kInt32:
      convert_all<std::int32_t>(header_, raw_, out);
      break;
    case DType::kUint32:
      convert_all<std::uint32_t>(header_, raw_, out);
      break;
    case DType::kInt64:
      convert_all<std::int64_t>(header_, raw_, out);
      break;
    case DType::kUint64:
      convert_all<std::uint64_t>(header_, raw_, out);
      break;
    case DType::kBool:
      convert_all<bool>(header_, raw_, out);
      break;
    case DType::kUnicode:
      break;
  }
  return out;
}

template std::vector<float> NpyArray::to_vector<float>() const;
template std::vector<double> NpyArray::to_vector<double>() const;
template std::vector<half> NpyArray::to_vector<half>() const;
template std::vector<std::int8_t> NpyArray::to_vector<std::int8_t>() const;
template std::vector<std::int16_t> NpyArray::to_vector<std::int16_t>() const;
template std::vector<std::int32_t> NpyArray::to_vector<std::int32_t>() const;
template std::vector<std::int64_t> NpyArray::to_vector<std::int64_t>() const;
template std::vector<std::uint8_t> NpyArray::to_vector<std::uint8_t>() const;
template std::vector<std::uint16_t> NpyArray::to_vector<std::uint16_t>() const;
template std::vector<std::uint32_t> NpyArray::to_vector<std::uint32_t>() const;
template std::vector<std::uint64_t> NpyArray::to_vector<std::uint64_t>() const;
template std::vector<bool> NpyArray::to_vector<bool>() const;

}  // namespace qk::io
