// .npy read and write (format versions 1.0, 2.0, 3.0). Never unpickles: object arrays are an error.
// Large files are memory-mapped read-only; a little-endian C-order array whose dtype matches is viewed
// in place with no copy. Every error is a qk::Error whose message starts with the file name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/dtype.hpp"

namespace qk::io {

struct NpyHeader {
  DType dtype = DType::kFloat32;
  bool big_endian = false;  // byte order of the stored data (false for 1-byte types)
  bool fortran_order = false;
  Shape shape;
  std::int64_t numel = 0;
  std::size_t item_size = 0;  // bytes per element (4 * n for '<U<n>')
  int version_major = 1;
  std::size_t data_offset = 0;  // bytes from the start of the .npy to the data
  std::size_t data_bytes = 0;   // numel * item_size
};

// Parses and validates the header at the start of bytes (magic, version, header length, the dict,
// dtype, shape, overflow, and that the data fits in bytes.size()). name is used in messages.
NpyHeader parse_npy_header(std::span<const std::byte> bytes, const std::string& name);

// The header bytes (magic, version, padded dict, newline) for a little-endian C-order array, padded so
// that the data starts on a 64-byte boundary. Version 1.0 unless the dict needs more than 65535 bytes.
std::vector<std::byte> encode_npy_header(DType dtype, const Shape& shape);

class NpyArray {
 public:
  NpyArray() = default;
  NpyArray(NpyArray&&) noexcept = default;
  NpyArray& operator=(NpyArray&&) noexcept = default;
  ~NpyArray();

  const std::string& name() const { return name_; }
  const NpyHeader& header() const { return header_; }
  DType dtype() const { return header_.dtype; }
  const Shape& shape() const { return header_.shape; }
  std::int64_t numel() const { return header_.numel; }
  // The stored data bytes, in the file's byte order and memory order.
  std::span<const std::byte> raw() const { return raw_; }
  // Little-endian (or 1-byte), C order (or Fortran order with at most one dimension above 1) and aligned
  // for the dtype: the data can be viewed in place.
  bool is_native_c_order() const;

  // A view of the data in place; throws unless dtype matches T and is_native_c_order().
  template <class T>
  TensorView<const T> view() const {
    if (dtype_of<T>() != header_.dtype)
      throw Error(name_ + ": expected dtype " + dtype_name(dtype_of<T>()) + ", got " +
                  dtype_name(header_.dtype));
    if (!is_native_c_order())
      throw Error(name_ + ": data is not aligned little-endian C order; use to_vector");
    return TensorView<const T>(reinterpret_cast<const T*>(raw_.data()), header_.shape);
  }

  // The data converted to T in C order (byte-swapped, transposed from Fortran order, cast from any
  // numeric dtype). Supported T: float, double, half, int8/16/32/64, uint8/16/32/64, bool.
  template <class T>
  std::vector<T> to_vector() const;

  // The text of a 0-d (or one-element) unicode array, as UTF-8.
  std::string as_string() const;

  // Advise the kernel that [offset, offset+len) of raw() will not be read again soon (memory-mapped
  // arrays drop those pages from the resident set; a no-op for in-memory arrays).
  void release(std::size_t offset, std::size_t len) const;

  // Implementation detail: construction from a parsed header and storage.
  struct Storage;
  NpyArray(std::string name, NpyHeader header, std::shared_ptr<Storage> storage,
           std::span<const std::byte> raw)
      : name_(std::move(name)), header_(std::move(header)), storage_(std::move(storage)), raw_(raw) {}

 private:
  std::string name_;
  NpyHeader header_;
  std::shared_ptr<Storage> storage_;
  std::span<const std::byte> raw_;
};

// Reads a .npy file. Files of at least mmap_threshold bytes are memory-mapped read-only, smaller ones read.
NpyArray read_npy(const std::string& path, std::size_t mmap_threshold = std::size_t{1} << 20);
// Parses a .npy held in memory (an .npz member); takes ownership of the bytes.
NpyArray parse_npy(std::vector<std::byte> bytes, const std::string& name);

// An array over bytes held elsewhere, used in place (a tensor inside a mapped model file): `owner` keeps
// them alive; release() drops their pages when `mapped` says they are a read-only file mapping. data
// holds numel * dtype_size bytes, little-endian C order; throws qk::Error naming `name` otherwise.
NpyArray borrow_npy(std::string name, DType dtype, const Shape& shape, std::span<const std::byte> data,
                    std::shared_ptr<const void> owner, bool mapped);
// An array that owns `data` (numel * dtype_size bytes, little-endian C order).
NpyArray make_npy(std::string name, DType dtype, const Shape& shape, std::vector<std::byte> data);

// Encodes a whole .npy (header + data) in memory. data holds numel * dtype_size bytes, little-endian C order.
std::vector<std::byte> encode_npy(DType dtype, const Shape& shape, std::span<const std::byte> data);

// A whole .npy holding a 0-d unicode string ('<U<n>', UTF-32LE), as np.array("text") writes it.
std::vector<std::byte> encode_npy_string(const std::string& utf8);

// Writes a .npy atomically: a temporary file in the same folder, fsync, rename. An existing file at path
// is untouched if anything fails.
void write_npy(const std::string& path, DType dtype, const Shape& shape, std::span<const std::byte> data);

template <class T>
void write_npy(const std::string& path, TensorView<const T> x) {
  const auto flat = x.flat();
  write_npy(path, dtype_of<T>(), x.shape(), std::as_bytes(flat));
}

}  // namespace qk::io
