// TensorView: a non-owning N-d view (pointer, shape, strides in elements). The library takes views so
// that memory-mapped files and caller buffers are used in place, never copied.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"

namespace qk {

using Shape = std::vector<std::int64_t>;

// Element count of a shape; throws when a dimension is negative or the product overflows int64.
inline std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (const std::int64_t d : shape) {
    if (d < 0) throw Error("negative dimension in shape");
    if (d != 0 && n > INT64_MAX / d) throw Error("shape element count overflows 64 bits");
    n *= d;
  }
  return n;
}

inline std::string shape_string(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

inline Shape c_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    // An empty tensor's strides are never used to address anything; stop before they could overflow.
    if (shape[i] > 1 && stride > INT64_MAX / shape[i]) stride = 0;
    stride *= shape[i];
  }
  return strides;
}

template <class T>
class TensorView {
 public:
  TensorView() = default;
  // A C-contiguous view.
  TensorView(T* data, Shape shape) : data_(data), shape_(std::move(shape)), strides_(c_strides(shape_)) {
    numel_ = shape_numel(shape_);
  }
  TensorView(T* data, Shape shape, Shape strides)
      : data_(data), shape_(std::move(shape)), strides_(std::move(strides)) {
    if (strides_.size() != shape_.size()) throw Error("TensorView: strides and shape differ in rank");
    numel_ = shape_numel(shape_);
  }
  // A const view of a mutable one.
  template <class U>
  requires std::is_same_v<T, const U> TensorView(
      const TensorView<U>& other)  // NOLINT(google-explicit-constructor)
      : data_(other.data()), shape_(other.shape()), strides_(other.strides()), numel_(other.numel()) {}

  T* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  std::int64_t numel() const { return numel_; }
  std::int64_t dim(int axis) const { return shape_.at(static_cast<std::size_t>(axis)); }

  bool is_contiguous() const { return numel_ <= 1 || strides_ == c_strides(shape_); }
  // The elements in C order; only for contiguous views.
  std::span<T> flat() const {
    if (!is_contiguous()) throw Error("TensorView: a contiguous view is required here");
    return {data_, static_cast<std::size_t>(numel_)};
  }

 private:
  T* data_ = nullptr;
  Shape shape_;
  Shape strides_;
  std::int64_t numel_ = 0;
};

}  // namespace qk
