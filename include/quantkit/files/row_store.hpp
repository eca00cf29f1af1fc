// Embedding row stores: tables on disk whose row i sits at a computable offset, read a batch of rows at a
// time with direct I/O (io/block_reader.hpp), for tables larger than the RAM a process may give them.
//
// File layout (little-endian; written by the create_* functions below, ".q8"/".q4"/... by convention):
//   0     8  magic "QKROWS\0\1"
//   8     4  format version (1)
//   12    4  storage: 0 fp32, 1 fp16, 2 int8, 3 int4 (embed/embedding_table.hpp's row layouts)
//   16    8  rows
//   24    8  dim
//   32    8  row_bytes   (must equal the storage's row size for dim)
//   40    8  row_stride  (>= row_bytes; bytes from one row's start to the next)
//   48    8  data_offset (a multiple of 4096: the rows start on a page, so direct reads line up)
//   56   ..  zeros up to data_offset
//   data_offset + i * row_stride: row i. The file is padded with zeros to a multiple of 4096.
// A 2-D float32 or float16 .npy (C order, little-endian) is a row store too: its rows also sit at
// computable offsets, so the float32 table users already have serves as the float32 store as it is.
//
// Creating a store streams: rows are encoded and written a chunk (8 MiB) at a time, so a 10M x 768 table
// never needs its 30 GB in RAM. Output is atomic (io/atomic_file.hpp): a failure (a full disk included)
// removes the partial file and leaves any existing file at the destination untouched.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "quantkit/core/progress.hpp"
#include "quantkit/embed/row_source.hpp"
#include "quantkit/io/block_reader.hpp"

namespace qk {

inline constexpr char kRowStoreMagic[8] = {'Q', 'K', 'R', 'O', 'W', 'S', '\0', '\1'};
inline constexpr std::uint32_t kRowStoreVersion = 1;
inline constexpr std::int64_t kRowStoreDataOffset = 4096;

struct RowStoreHeader {
  EmbeddingStorage storage = EmbeddingStorage::kF32;
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  std::int64_t row_bytes = 0;
  std::int64_t row_stride = 0;
  std::int64_t data_offset = 0;
  bool npy = false;  // a float .npy read as a store
};

// Reads and validates the header of a row store or a float .npy: known magic and version, a known
// storage, row_bytes that match it, a page-aligned data start, and a file long enough for every row.
// Throws a qk::Error naming the file and the first problem.
RowStoreHeader read_row_store_header(const std::string& path);

// Streams a 2-D float .npy (float32, float16 or float64, little-endian C order, read through the memory
// map a chunk at a time and its pages dropped) into a row store of `storage` at path; other layouts
// (big-endian, Fortran order) are converted in memory first. When path ends in ".npy" it writes a .npy
// instead (fp32 or fp16 only). Returns the header.
RowStoreHeader create_row_store_from_npy(const std::string& npy_path, EmbeddingStorage storage,
                                         const std::string& path, const ProgressFn& progress = {});
// The same for the seeded synthetic table of embed/id_stream.hpp (synthetic_table(rows, dim, seed),
// generated a chunk at a time, so its values equal the in-RAM table's).
RowStoreHeader create_synthetic_row_store(std::int64_t rows, std::int64_t dim, std::uint64_t seed,
                                          EmbeddingStorage storage, const std::string& path,
                                          const ProgressFn& progress = {});

struct RowStoreOptions {
  io::BlockReaderOptions io;  // direct I/O, backend, reads in flight
  // One read request spans at most this many bytes (rows next to each other share requests).
  std::int64_t max_request_bytes = 256 * 1024;
  std::optional<std::int64_t> expect_dim;          // refuse a store of another dim
  std::optional<EmbeddingStorage> expect_storage;  // ... or another storage
};

// A row store opened for reading: a RowSource whose fetchers read a batch's rows with one batch of
// direct reads (the rows sorted by offset, each widened to whole 4096-byte blocks, overlapping and
// touching blocks merged into one request), into the fetcher's own aligned buffer.
class RowStore final : public RowSource {
 public:
  static std::shared_ptr<RowStore> open(const std::string& path, const RowStoreOptions& options = {});

  std::int64_t rows() const override { return header_.rows; }
  std::int64_t dim() const override { return header_.dim; }
  EmbeddingStorage storage() const override { return header_.storage; }
  const std::string& name() const override { return path_; }
  std::unique_ptr<RowFetcher> fetcher() const override;
  // A fetcher with other I/O options (the tests compare buffered reads with direct ones).
  std::unique_ptr<RowFetcher> fetcher(const io::BlockReaderOptions& io) const;

  const RowStoreHeader& header() const { return header_; }
  std::int64_t file_bytes() const { return file_bytes_; }
  // What the fetchers run with, found when the store was opened.
  bool direct() const { return direct_; }
  io::ReadBackend backend() const { return backend_; }
  const std::string& fallback_reason() const { return fallback_reason_; }

 private:
  RowStore() = default;
  std::string path_;
  RowStoreHeader header_;
  RowStoreOptions options_;
  std::int64_t file_bytes_ = 0;
  bool direct_ = false;
  io::ReadBackend backend_ = io::ReadBackend::kPread;
  std::string fallback_reason_;
};

}  // namespace qk
