// libFuzzer target: the fuzz input is an embedding row store file (files/row_store.hpp: quantkit's layout
// or a float .npy), written to a temporary file because stores are read by path with pread/io_uring.
// Opening it must either succeed or throw qk::Error; a store that opens must hold every row its header
// declares, so fetching the first and the last row must succeed and return bytes inside the file. The seed
// corpus (corpus/rowstore) holds small valid stores of each storage and a float32 .npy.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/files/row_store.hpp"

namespace {
const std::string& scratch_path() {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("qk-fuzz-rowstore-" + std::to_string(::getpid()))).string();
  return path;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = scratch_path();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  try {
    qk::RowStoreOptions options;
    options.io.direct = false;  // the temporary folder may be tmpfs; direct reads are the unit tests' job
    options.io.backend = qk::io::ReadBackend::kPread;
    options.io.queue_depth = 1;
    const auto store = qk::RowStore::open(path, options);
    const std::vector<std::int64_t> ids = {0, store->rows() - 1};
    std::vector<const std::uint8_t*> rows(ids.size());
    auto fetcher = store->fetcher();
    fetcher->fetch(ids, rows);
    const std::int64_t row_bytes = store->row_bytes();
    for (const std::uint8_t* row : rows) {
      if (row == nullptr) std::abort();
      volatile std::uint8_t sink = row[0];  // the row's bytes are readable (ASan checks the range)
      sink = row[row_bytes - 1];
      (void)sink;
    }
  } catch (const qk::Error&) {
  }
  return 0;
}
