// safetensors files (Hugging Face's tensor container), read in place from a memory mapping and written
// atomically. Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object: per
// tensor {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to the data section, plus
// an optional "__metadata__" string-to-string map), then the data section.
//
// Reading validates as the reference implementation (the `safetensors` crate) does, so a file it refuses
// is refused here too: N at most 100,000,000 and within the file; the JSON valid, an object, no name
// twice; every dtype known; shapes whose element count and byte count do not overflow; byte counts equal
// to elements x dtype size; the tensors, in offset order, contiguous from 0 with no gap or overlap; and the
// data section ending exactly at the last tensor's end. Every error is a qk::Error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/mapped_file.hpp"

namespace qk::io {

// The safetensors dtypes, named as in the header ("F32", "BF16", "F8_E4M3", ...).
enum class StDType { kBool, kU8, kI8, kF8E5M2, kF8E4M3, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kI64, kU64, kF64 };

std::size_t st_dtype_size(StDType d);
const char* st_dtype_name(StDType d);
// Parses a header name ("F32"); throws qk::Error for names it does not know.
StDType st_dtype_from_name(const std::string& name);
bool st_dtype_is_float(StDType d);  // F64, F32, F16, BF16, F8_E4M3, F8_E5M2

struct StTensor {
  std::string name;
  StDType dtype = StDType::kF32;
  Shape shape;
  std::uint64_t begin = 0, end = 0;  // data_offsets, relative to the data section
  std::span<const std::byte> data;   // the tensor's bytes inside the mapping (or the caller's buffer)
  std::int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`.
  static SafetensorsFile open(const std::string& path);
  // Validates bytes the caller keeps alive (the fuzzer's entry point); `name` is used in messages.
  static SafetensorsFile parse(std::span<const std::byte> bytes, const std::string& name);

  const std::string& name() const { return name_; }
  // In data-offset order (the order of the data section).
  const std::vector<StTensor>& tensors() const { return tensors_; }
  bool contains(const std::string& tensor) const;
  // Throws qk::Error naming the file and the tensor when it is absent.
  const StTensor& tensor(const std::string& tensor) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::uint64_t header_bytes() const { return header_bytes_; }  // N
  // What keeps the tensors' bytes alive (the mapping; null for parse(), whose caller keeps them).
  std::shared_ptr<const void> owner() const { return file_; }

 private:
  std::string name_;
  std::shared_ptr<const MappedFile> file_;  // keeps the mapping alive while tensors point into it
  std::vector<StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  std::uint64_t header_bytes_ = 0;
};

// A floating tensor's values as float32 (F64 and F32 rounded to nearest; F16, BF16, FP8 exact).
// Throws qk::Error for integer and bool tensors.
std::vector<float> st_to_float(const StTensor& t);
// Elements [first, first + out.size()) of the same, for a tensor converted a chunk at a time.
void st_to_float(const StTensor& t, std::int64_t first, std::span<float> out);

// Collects tensors, then writes the file atomically (temporary file, fsync, rename). The data section
// holds the tensors sorted by element size, largest first, then by name (the reference writer's order,
// which keeps every tensor aligned to its element size); the header is padded with spaces to a multiple
// of 8 bytes.
//
// The header comes first but is known only at the end, so the data must wait somewhere: in memory by
// default, or, for a whole model, in an unnamed temporary file beside the output (SafetensorsWriter(folder)):
// each tensor is written there as it is added, and write() copies the spilled data after the header in the
// reference order. A model of any size then costs the writer no memory beyond a copy buffer.
class SafetensorsWriter {
 public:
  SafetensorsWriter() = default;
  // Spills to an unnamed temporary file in `folder` (the output's, so the data never crosses file systems);
  // throws qk::Error naming the folder when it cannot be created.
  explicit SafetensorsWriter(const std::string& folder);
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  ~SafetensorsWriter();

  // Copies `data`; throws when its size is not shape x dtype size or the name is taken (or "__metadata__").
  void add(const std::string& name, StDType dtype, const Shape& shape, std::span<const std::byte> data);
  void set_metadata(std::map<std::string, std::string> metadata) { metadata_ = std::move(metadata); }
  // The whole file's bytes (header and data).
  std::vector<std::byte> encode() const;
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    StDType dtype;
    Shape shape;
    std::vector<std::byte> data;  // in memory, or empty when spilled
    std::uint64_t spill_offset = 0, bytes = 0;
  };
  // The entries in data-section order, and the header text (padded) that describes them.
  std::vector<const Entry*> ordered() const;
  std::string header_text(const std::vector<const Entry*>& order) const;
  // Calls sink(bytes) over an entry's data, in pieces when it was spilled.
  template <class Sink>
  void for_each_piece(const Entry& e, Sink&& sink) const;

  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
  int spill_fd_ = -1;
  std::string spill_folder_;
  std::uint64_t spill_bytes_ = 0;
};

}  // namespace qk::io
