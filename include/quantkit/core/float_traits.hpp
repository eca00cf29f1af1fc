// Which arithmetic type a storage float type computes in: float for float/half/bfloat16, double for double.
#pragma once

#include <type_traits>

#include "quantkit/core/half.hpp"

namespace qk {

template <class T>
concept QuantFloat = std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, half> ||
    std::is_same_v<T, bfloat16>;

template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <QuantFloat T>
constexpr compute_t<T> to_compute(T v) {
  return static_cast<compute_t<T>>(v);
}

template <QuantFloat T>
constexpr T from_compute(compute_t<T> v) {
  return T(v);
}

}  // namespace qk
