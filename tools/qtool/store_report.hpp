// The report of qtool embed --store (text or JSON on stdout), and of writing a store.
#pragma once

#include <string>

#include "common.hpp"
#include "perf/store_bench.hpp"
#include "quantkit/files/row_store.hpp"

namespace qtool {

void print_store_report(const qk::perf::StoreBenchResult& r, const qk::perf::StoreBenchOptions& o,
                        const Output& out);
void print_store_written(const qk::RowStoreHeader& h, const std::string& path, const Output& out);

}  // namespace qtool
