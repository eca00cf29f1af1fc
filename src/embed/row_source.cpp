// RowSource's range check and the in-RAM source.
#include "quantkit/embed/row_source.hpp"

#include "quantkit/core/error.hpp"

namespace qk {

void RowSource::check_ids(std::span<const std::int64_t> ids, const std::string& what) const {
  const std::int64_t n = rows();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t id = ids[i];
    if (id < 0 || id >= n) {
      throw Error(what + ": id " + std::to_string(id) + " at position " + std::to_string(i) +
                  (id < 0 ? " is negative" : " is out of range") + " (" + name() + " has " +
                  std::to_string(n) + " rows, ids must be in [0, " + std::to_string(n) + "))");
    }
  }
}

namespace {
class TableFetcher final : public RowFetcher {
 public:
  explicit TableFetcher(const EmbeddingTable& table) : table_(table) {}
  std::int64_t fetch(std::span<const std::int64_t> ids, std::span<const std::uint8_t*> rows) override {
    for (std::size_t k = 0; k < ids.size(); ++k) rows[k] = table_.row_data(ids[k]);
    return 0;  // nothing is read: the rows are already in memory
  }

 private:
  const EmbeddingTable& table_;
};
}  // namespace

TableRowSource::TableRowSource(std::shared_ptr<const EmbeddingTable> table) : table_(std::move(table)) {
  if (!table_) throw Error("TableRowSource: no table");
}

std::unique_ptr<RowFetcher> TableRowSource::fetcher() const {
  return std::make_unique<TableFetcher>(*table_);
}

std::int64_t lookup_from_source(const RowSource& source, RowFetcher& fetcher,
                                std::span<const std::int64_t> ids, std::span<float> out) {
  const std::int64_t dim = source.dim();
  if (static_cast<std::int64_t>(out.size()) != static_cast<std::int64_t>(ids.size()) * dim)
    throw Error("embedding lookup: the output holds " + std::to_string(out.size()) + " floats, expected " +
                std::to_string(ids.size()) + " x " + std::to_string(dim));
  source.check_ids(ids, "embedding lookup");
  thread_local UniqueIds unique;
  thread_local std::vector<const std::uint8_t*> rows;
  unique_ids(ids, unique);
  rows.resize(unique.ids.size());
  const std::int64_t read = fetcher.fetch(unique.ids, rows);
  for (std::size_t u = 0; u < unique.ids.size(); ++u)
    dequantize_stored_row(source.storage(), dim, rows[u],
                          out.data() + std::int64_t{unique.first_position[u]} * dim);
  copy_repeats(unique, dim, out.data());
  return read;
}

}  // namespace qk
