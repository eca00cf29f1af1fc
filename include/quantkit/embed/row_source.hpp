// Where the rows of an embedding table come from when they are not in the hot-row cache: a table in RAM
// (TableRowSource), or a row store on disk read with direct I/O (files/row_store.hpp). Rows travel in
// their stored format (embedding_table.hpp's row layouts); dequantize_stored_row (there) turns one into
// floats.
//
// A source is shared by every thread; each thread fetches through its own RowFetcher (a disk fetcher owns
// its file descriptor, io_uring ring and aligned buffers), so fetches from the lookup thread and the
// prefetch worker run at the same time without a lock.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "quantkit/embed/embedding_table.hpp"
#include "quantkit/embed/sparse_lookup.hpp"

namespace qk {

class RowFetcher {
 public:
  virtual ~RowFetcher() = default;
  // Makes the stored bytes of rows `ids` (in range; repeats allowed) available: rows[k] points at
  // ids[k]'s row_bytes bytes, valid until this fetcher's next fetch. Returns the bytes read from the
  // source's medium (for a disk store: whole aligned blocks, adjacent rows' blocks read once).
  virtual std::int64_t fetch(std::span<const std::int64_t> ids, std::span<const std::uint8_t*> rows) = 0;
};

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual std::int64_t rows() const = 0;
  virtual std::int64_t dim() const = 0;
  virtual EmbeddingStorage storage() const = 0;
  virtual const std::string& name() const = 0;
  // A fetcher for the calling thread.
  virtual std::unique_ptr<RowFetcher> fetcher() const = 0;

  std::int64_t row_bytes() const { return embedding_row_bytes(storage(), dim()); }
  // Throws a qk::Error naming `what`, the source and the first id outside [0, rows).
  void check_ids(std::span<const std::int64_t> ids, const std::string& what) const;
};

// A table held in RAM (or memory-mapped): fetching hands out pointers into the table, reading nothing.
class TableRowSource final : public RowSource {
 public:
  explicit TableRowSource(std::shared_ptr<const EmbeddingTable> table);
  std::int64_t rows() const override { return table_->rows(); }
  std::int64_t dim() const override { return table_->dim(); }
  EmbeddingStorage storage() const override { return table_->storage(); }
  const std::string& name() const override { return table_->name(); }
  std::unique_ptr<RowFetcher> fetcher() const override;
  const EmbeddingTable& table() const { return *table_; }

 private:
  std::shared_ptr<const EmbeddingTable> table_;
};

// The uncached path over a source: the batch's unique rows fetched at once (from a disk store: one batch
// of direct reads), dequantized, copied to every occurrence. out: ids.size() x dim. Returns the bytes the
// fetcher read from the medium. Same bits as a lookup on the table in RAM.
std::int64_t lookup_from_source(const RowSource& source, RowFetcher& fetcher,
                                std::span<const std::int64_t> ids, std::span<float> out);

}  // namespace qk
