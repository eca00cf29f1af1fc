// Where arrays go as encoded .npy members: an .npz being assembled (io/npz.hpp NpzWriter), or a
// translation into another container (a quantized safetensors model, files/safetensors_model.hpp). The
// quantizers write a tensor's members (q, scale, zero_point, meta, ...) through this, whatever the
// container.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "quantkit/io/npy.hpp"

namespace qk::io {

class ArraySink {
 public:
  virtual ~ArraySink() = default;
  // A whole encoded .npy (see encode_npy); the sink keeps or translates the bytes.
  virtual void add_encoded(const std::string& name, std::vector<std::byte> npy_bytes) = 0;
  void add(const std::string& name, DType dtype, const Shape& shape, std::span<const std::byte> data) {
    add_encoded(name, encode_npy(dtype, shape, data));
  }
  template <class T>
  void add(const std::string& name, const Shape& shape, std::span<const T> data) {
    add(name, dtype_of<T>(), shape, std::as_bytes(data));
  }
};

}  // namespace qk::io
