// Opening row stores (files/row_store.hpp): header validation, and the fetcher that reads a batch's rows
// with direct I/O.
#include "quantkit/files/row_store.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {

namespace {

template <class T>
T get(const std::vector<std::byte>& bytes, std::size_t at) {
  T value;
  std::memcpy(&value, bytes.data() + at, sizeof(T));
  return value;
}

// The first `max_bytes` of the file (fewer if it is shorter), and its size.
std::vector<std::byte> read_head(const std::string& path, std::size_t max_bytes, std::int64_t& file_bytes) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) throw Error(path + ": is a folder, not a row store file");
  io::BlockReader reader(path, {false, io::ReadBackend::kPread, 1});
  file_bytes = reader.file_size();
  std::vector<std::byte> head(std::min<std::size_t>(max_bytes, static_cast<std::size_t>(file_bytes)));
  const io::ReadRequest request{0, static_cast<std::int64_t>(head.size()),
                                reinterpret_cast<std::uint8_t*>(head.data())};
  reader.read(std::span(&request, 1));
  return head;
}

RowStoreHeader npy_header(const std::string& path) {
  const io::NpyHeader npy = read_npy_header(path);
  RowStoreHeader h;
  h.npy = true;
  if (npy.shape.size() != 2)
    throw Error(path + ": a .npy row store must be 2-D (rows x dim), got " +
                std::to_string(npy.shape.size()) + "-D");
  if (npy.dtype != io::DType::kFloat32 && npy.dtype != io::DType::kFloat16)
    throw Error(path + ": a .npy row store holds float32 or float16, got " + io::dtype_name(npy.dtype) +
                " (write a quantized row store from it instead)");
  if (npy.big_endian || npy.fortran_order)
    throw Error(path + ": a .npy row store must be little-endian and in C order");
  h.storage = npy.dtype == io::DType::kFloat32 ? EmbeddingStorage::kF32 : EmbeddingStorage::kF16;
  h.rows = npy.shape[0];
  h.dim = npy.shape[1];
  check_embedding_shape({h.rows, h.dim}, path);
  h.row_bytes = embedding_row_bytes(h.storage, h.dim);
  h.row_stride = h.row_bytes;
  h.data_offset = static_cast<std::int64_t>(npy.data_offset);
  return h;
}

RowStoreHeader store_header(const std::vector<std::byte>& head, const std::string& path) {
  if (head.size() < 64)
    throw Error(path + ": truncated row store header (" + std::to_string(head.size()) + " bytes)");
  const auto version = get<std::uint32_t>(head, 8);
  if (version != kRowStoreVersion)
    throw Error(path + ": row store format version " + std::to_string(version) +
                " is not supported (this build reads version " + std::to_string(kRowStoreVersion) + ")");
  const auto code = get<std::uint32_t>(head, 12);
  if (code > 3) throw Error(path + ": unknown row storage code " + std::to_string(code));
  constexpr EmbeddingStorage kStorages[] = {EmbeddingStorage::kF32, EmbeddingStorage::kF16,
                                            EmbeddingStorage::kInt8, EmbeddingStorage::kInt4};
  RowStoreHeader h;
  h.storage = kStorages[code];
  h.rows = get<std::int64_t>(head, 16);
  h.dim = get<std::int64_t>(head, 24);
  h.row_bytes = get<std::int64_t>(head, 32);
  h.row_stride = get<std::int64_t>(head, 40);
  h.data_offset = get<std::int64_t>(head, 48);
  if (h.rows <= 0 || h.dim <= 0 || h.dim > (std::int64_t{1} << 24))
    throw Error(path + ": the header says " + std::to_string(h.rows) + " rows of dim " +
                std::to_string(h.dim) + " (rows and dim must be positive, dim at most 2^24)");
  const std::int64_t expected = embedding_row_bytes(h.storage, h.dim);
  if (h.row_bytes != expected)
    throw Error(path + ": the header's row size " + std::to_string(h.row_bytes) + " bytes does not match " +
                to_string(h.storage) + " rows of dim " + std::to_string(h.dim) + " (" +
                std::to_string(expected) + " bytes)");
  if (h.row_stride < h.row_bytes || h.row_stride > (std::int64_t{1} << 30))
    throw Error(path + ": the header's row stride " + std::to_string(h.row_stride) +
                " is smaller than a row (" + std::to_string(h.row_bytes) + " bytes) or absurd");
  if (h.data_offset < 64 || h.data_offset % kRowStoreDataOffset != 0)
    throw Error(path + ": the header's data offset " + std::to_string(h.data_offset) +
                " is not a multiple of " + std::to_string(kRowStoreDataOffset));
  return h;
}

}  // namespace

RowStoreHeader read_row_store_header(const std::string& path) {
  std::int64_t file_bytes = 0;
  const std::vector<std::byte> head = read_head(path, 64 * 1024, file_bytes);
  const bool is_store = head.size() >= 8 && std::memcmp(head.data(), kRowStoreMagic, 8) == 0;
  const bool is_npy = head.size() >= 6 && std::memcmp(head.data(), "\x93NUMPY", 6) == 0;
  if (!is_store && !is_npy) throw Error(path + ": not a row store (no row store magic, and not a .npy)");
  const RowStoreHeader h = is_store ? store_header(head, path) : npy_header(path);
  // rows * stride without overflow: rows <= (max - offset) / stride.
  if (h.rows > (INT64_MAX - h.data_offset) / h.row_stride ||
      h.data_offset + (h.rows - 1) * h.row_stride + h.row_bytes > file_bytes)
    throw Error(path + ": the file holds " + std::to_string(file_bytes) + " bytes, too few for the " +
                std::to_string(h.rows) + " rows its header declares (truncated, or a lying header)");
  return h;
}

namespace {

struct AlignedFree {
  void operator()(std::uint8_t* p) const { ::operator delete[](p, std::align_val_t{io::kDirectAlignment}); }
};

class StoreFetcher final : public RowFetcher {
 public:
  static constexpr std::int64_t kKeepBytes = std::int64_t{4} << 20;
  StoreFetcher(const RowStoreHeader& header, const std::string& path, const io::BlockReaderOptions& io,
               std::int64_t max_request_bytes)
      : header_(header), reader_(path, io), max_request_(std::max(max_request_bytes, io::kDirectAlignment)) {}

  std::int64_t fetch(std::span<const std::int64_t> ids, std::span<const std::uint8_t*> rows) override {
    constexpr std::int64_t kBlock = io::kDirectAlignment;
    order_.resize(ids.size());
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    std::sort(order_.begin(), order_.end(), [&](std::size_t a, std::size_t b) { return ids[a] < ids[b]; });
    // Plan: requests over whole blocks, laid out one after another in the buffer.
    requests_.clear();
    request_at_.clear();
    row_at_.resize(ids.size());
    std::int64_t buffer_bytes = 0;
    for (const std::size_t k : order_) {
      const std::int64_t begin = header_.data_offset + ids[k] * header_.row_stride;
      const std::int64_t end = begin + header_.row_bytes;
      const std::int64_t block_begin = begin / kBlock * kBlock;
      const std::int64_t block_end = (end + kBlock - 1) / kBlock * kBlock;
      if (!requests_.empty()) {
        io::ReadRequest& last = requests_.back();
        const std::int64_t last_end = last.offset + last.length;
        if (block_begin <= last_end && block_end - last.offset <= max_request_) {
          if (block_end > last_end) {
            last.length = block_end - last.offset;
            buffer_bytes += block_end - last_end;
          }
          row_at_[k] = request_at_.back() + (begin - last.offset);
          continue;
        }
      }
      requests_.push_back({block_begin, block_end - block_begin, nullptr});  // dst: once the buffer is sized
      request_at_.push_back(buffer_bytes);
      row_at_[k] = buffer_bytes + (begin - block_begin);
      buffer_bytes += block_end - block_begin;
    }
    // Grow to fit; give back an outsized buffer (a big warm-up) once batches are small again, so the
    // fetcher's memory stays a batch's worth (README: the fixed overhead outside the budget).
    if (buffer_bytes > capacity_ || (capacity_ > kKeepBytes && buffer_bytes <= kKeepBytes)) {
      buffer_.reset(static_cast<std::uint8_t*>(
          ::operator new[](static_cast<std::size_t>(buffer_bytes), std::align_val_t{kBlock})));
      capacity_ = buffer_bytes;
    }
    for (std::size_t r = 0; r < requests_.size(); ++r) requests_[r].dst = buffer_.get() + request_at_[r];
    reader_.read(requests_);
    for (std::size_t k = 0; k < ids.size(); ++k) rows[k] = buffer_.get() + row_at_[k];
    return buffer_bytes;
  }

 private:
  RowStoreHeader header_;
  io::BlockReader reader_;
  std::int64_t max_request_;
  std::vector<std::size_t> order_;
  std::vector<io::ReadRequest> requests_;
  std::vector<std::int64_t> request_at_;  // each request's offset in the buffer
  std::vector<std::int64_t> row_at_;
  std::unique_ptr<std::uint8_t[], AlignedFree> buffer_;
  std::int64_t capacity_ = 0;
};

}  // namespace

std::shared_ptr<RowStore> RowStore::open(const std::string& path, const RowStoreOptions& options) {
  std::shared_ptr<RowStore> store(new RowStore());
  store->path_ = path;
  store->header_ = read_row_store_header(path);
  store->options_ = options;
  const RowStoreHeader& h = store->header_;
  if (options.expect_dim && *options.expect_dim != h.dim)
    throw Error(path + ": the store's rows have dim " + std::to_string(h.dim) + ", expected " +
                std::to_string(*options.expect_dim));
  if (options.expect_storage && *options.expect_storage != h.storage)
    throw Error(path + ": the store holds " + std::string(to_string(h.storage)) + " rows, expected " +
                to_string(*options.expect_storage));
  // Open one reader now: it finds out (and reports) whether direct I/O and io_uring work for this file.
  const io::BlockReader probe(path, options.io);
  store->file_bytes_ = probe.file_size();
  store->direct_ = probe.direct();
  store->backend_ = probe.backend();
  store->fallback_reason_ = probe.fallback_reason();
  return store;
}

std::unique_ptr<RowFetcher> RowStore::fetcher() const { return fetcher(options_.io); }

std::unique_ptr<RowFetcher> RowStore::fetcher(const io::BlockReaderOptions& io) const {
  return std::make_unique<StoreFetcher>(header_, path_, io, options_.max_request_bytes);
}

}  // namespace qk
