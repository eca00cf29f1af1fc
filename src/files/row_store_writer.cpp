// Writing row stores (files/row_store.hpp): the header, and rows streamed a chunk at a time from a .npy or
// the synthetic generator into an atomic output.
#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/files/row_store.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {

namespace {

bool ends_with_npy(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
}

std::uint32_t storage_code(EmbeddingStorage storage) {
  switch (storage) {
    case EmbeddingStorage::kF32:
      return 0;
    case EmbeddingStorage::kF16:
      return 1;
    case EmbeddingStorage::kInt8:
      return 2;
    case EmbeddingStorage::kInt4:
      return 3;
  }
  return 0;
}

template <class T>
void put(std::vector<std::byte>& bytes, std::size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}

// fills `n` rows x dim floats starting at row `first`
using RowGenerator = std::function<void(std::int64_t first, std::int64_t n, float* out)>;

RowStoreHeader write_store(std::int64_t rows, std::int64_t dim, EmbeddingStorage storage,
                           const std::string& path, const RowGenerator& generate,
                           const ProgressFn& progress) {
  check_embedding_shape({rows, dim}, path);
  const bool npy = ends_with_npy(path);
  if (npy && storage != EmbeddingStorage::kF32 && storage != EmbeddingStorage::kF16)
    throw Error(path + ": a .npy row store holds float32 or float16 rows, not " + to_string(storage) +
                " (give the store another extension for the quantized layout)");
  RowStoreHeader h;
  h.storage = storage;
  h.rows = rows;
  h.dim = dim;
  h.row_bytes = embedding_row_bytes(storage, dim);
  h.row_stride = h.row_bytes;
  h.npy = npy;
  std::vector<std::byte> head;
  if (npy) {
    head = io::encode_npy_header(
        storage == EmbeddingStorage::kF32 ? io::DType::kFloat32 : io::DType::kFloat16, {rows, dim});
  } else {
    head.assign(static_cast<std::size_t>(kRowStoreDataOffset), std::byte{0});
    std::memcpy(head.data(), kRowStoreMagic, 8);
    put(head, 8, kRowStoreVersion);
    put(head, 12, storage_code(storage));
    put(head, 16, h.rows);
    put(head, 24, h.dim);
    put(head, 32, h.row_bytes);
    put(head, 40, h.row_stride);
    put(head, 48, kRowStoreDataOffset);
  }
  h.data_offset = static_cast<std::int64_t>(head.size());
  io::AtomicFile out(path);
  out.write(head);
  const std::int64_t chunk_rows = std::max<std::int64_t>(1, (std::int64_t{8} << 20) / (dim * 4));
  std::vector<float> floats(static_cast<std::size_t>(std::min(chunk_rows, rows) * dim));
  std::vector<std::uint8_t> encoded(static_cast<std::size_t>(std::min(chunk_rows, rows) * h.row_bytes));
  for (std::int64_t r = 0; r < rows; r += chunk_rows) {
    const std::int64_t n = std::min(chunk_rows, rows - r);
    generate(r, n, floats.data());
    encode_embedding_rows(floats.data(), n, dim, storage, encoded.data());
    out.write(std::as_bytes(std::span(encoded.data(), static_cast<std::size_t>(n * h.row_bytes))));
    if (progress) progress(static_cast<double>(r + n) / static_cast<double>(rows));
  }
  if (!npy) {
    // Pad to whole pages: a direct read of the last row's block then never runs past the end.
    const std::int64_t end = h.data_offset + rows * h.row_stride;
    const std::int64_t padded = (end + kRowStoreDataOffset - 1) / kRowStoreDataOffset * kRowStoreDataOffset;
    const std::vector<std::byte> zeros(static_cast<std::size_t>(padded - end));
    out.write(zeros);
  }
  out.commit();
  return h;
}

}  // namespace

RowStoreHeader create_row_store_from_npy(const std::string& npy_path, EmbeddingStorage storage,
                                         const std::string& path, const ProgressFn& progress) {
  io::check_output_differs(path, {npy_path});
  const io::NpyArray array = io::read_npy(npy_path);
  check_embedding_shape(array.shape(), npy_path);
  if (!io::dtype_is_float(array.dtype()))
    throw Error(npy_path + ": an embedding table must hold floating-point values, got " +
                std::string(io::dtype_name(array.dtype())));
  const std::int64_t dim = array.shape()[1];
  const bool native = array.is_native_c_order();
  const io::DType dtype = array.dtype();
  const bool streamed = native && (dtype == io::DType::kFloat32 || dtype == io::DType::kFloat16 ||
                                   dtype == io::DType::kFloat64);
  // Big-endian or Fortran-order inputs are converted in memory once (documented in the header).
  std::vector<float> converted;
  if (!streamed) converted = array.to_vector<float>();
  const std::byte* raw = array.raw().data();
  const std::size_t item = array.header().item_size;
  return write_store(
      array.shape()[0], dim, storage, path,
      [&](std::int64_t first, std::int64_t n, float* out) {
        const std::size_t count = static_cast<std::size_t>(n * dim);
        const std::size_t at = static_cast<std::size_t>(first * dim);
        if (!streamed) {
          std::memcpy(out, converted.data() + at, count * 4);
          return;
        }
        if (dtype == io::DType::kFloat32) {
          std::memcpy(out, raw + at * 4, count * 4);
        } else if (dtype == io::DType::kFloat16) {
          for (std::size_t i = 0; i < count; ++i) {
            std::uint16_t bits;
            std::memcpy(&bits, raw + (at + i) * 2, 2);
            out[i] = half_bits_to_float(bits);
          }
        } else {
          for (std::size_t i = 0; i < count; ++i) {
            double v;
            std::memcpy(&v, raw + (at + i) * 8, 8);
            out[i] = static_cast<float>(v);
          }
        }
        // Drop the chunk's pages: streaming a table larger than RAM must not leave it resident.
        array.release(at * item, count * item);
      },
      progress);
}

RowStoreHeader create_synthetic_row_store(std::int64_t rows, std::int64_t dim, std::uint64_t seed,
                                          EmbeddingStorage storage, const std::string& path,
                                          const ProgressFn& progress) {
  SyntheticTableGenerator generator(seed);
  return write_store(
      rows, dim, storage, path,
      [&](std::int64_t, std::int64_t n, float* out) { generator.next(out, n * dim); }, progress);
}

}  // namespace qk
