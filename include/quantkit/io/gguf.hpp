// GGUF files (llama.cpp / ggml's model container, versions 2 and 3), read in place from a memory mapping
// and written atomically, tensor by tensor. Layout (little-endian throughout):
//   "GGUF", u32 version, u64 tensor count, u64 metadata count;
//   metadata: key (u64 length + UTF-8 bytes), u32 value type, value (numbers; bool as one byte; string
//     as u64 length + bytes; array as u32 element type, u64 count, elements — arrays of arrays allowed);
//   tensor infos: name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml type, u64 offset;
//   padding to `general.alignment` (u32, a power of two; 32 when absent), then the data section, each
//   tensor at its offset and padded to the alignment.
//
// Reading validates what ggml's gguf_init_from_file validates, so a file ggml refuses is refused here
// too, and every length and offset is checked against the file before it is used: magic; version 2 or 3
// (1 and 0, and a byte-swapped version, refused with the reason); counts the file could hold; strings at
// most 1 GiB; keys non-empty, unique, valid UTF-8; known value types; arrays at most 2^30 elements;
// general.alignment a u32 power of two; tensor names shorter than 64 bytes, unique and valid UTF-8; at
// most 4 dimensions, none negative, an element count and a byte count that do not overflow; a ggml type
// this table knows whose block divides ne[0]; offsets in order, each where the previous tensor's padded
// data ends (ggml's rule), and the data inside the file. Every error is a qk::Error naming the file.
// This reader also accepts arrays of arrays (the format allows them; ggml does not read them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/mapped_file.hpp"

namespace qk::io {

// The ggml tensor types a GGUF file may hold, by their numbers in ggml.h (removed ones are absent).
struct GgmlTypeInfo {
  std::uint32_t id;
  const char* name;          // ggml's type_name: "f32", "q4_0", "q4_K", ...
  std::int64_t block_size;   // weights per block (1 for plain types)
  std::int64_t block_bytes;  // bytes per block
};
// nullptr when ggml has no such type (or it was removed from GGUF files).
const GgmlTypeInfo* ggml_type_info(std::uint32_t id);
// Case-insensitive lookup by name ("q4_k", "Q4_K", "bf16"); nullptr when unknown.
const GgmlTypeInfo* ggml_type_by_name(const std::string& name);
inline constexpr std::uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlBF16 = 30;

enum class GgufType : std::uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars and arrays of numbers or bools keep their little-endian bytes as stored
// (bools one byte each), so a value written back is the same bytes.
struct GgufValue {
  GgufType type = GgufType::kU32;    // kArray for arrays
  GgufType element = GgufType::kU8;  // arrays: their elements' type
  std::vector<std::byte> raw;        // numbers and bools: count() elements
  std::vector<std::string> strings;  // strings: one for a scalar, count() for an array
  std::vector<GgufValue> arrays;     // arrays of arrays

  std::uint64_t count() const;  // 1 for a scalar
  // Typed reads of a scalar; they throw qk::Error naming `key` when the type differs.
  std::string as_string(const std::string& key) const;
  std::uint64_t as_uint(const std::string& key) const;  // any unsigned or non-negative signed integer
  // A short human-readable form (numbers, "\"text\"", "[n x type]" for arrays) for qtool inspect.
  std::string summary() const;

  static GgufValue of_string(std::string s);
  static GgufValue of_u32(std::uint32_t v);
  static GgufValue of_i32(std::int32_t v);
};

struct GgufTensor {
  std::string name;
  std::vector<std::int64_t> ne;  // ggml order: ne[0] is the row length (innermost)
  std::uint32_t type = kGgmlF32;
  std::uint64_t offset = 0;         // from the start of the data section
  std::span<const std::byte> data;  // the tensor's bytes inside the mapping
  Shape shape() const;              // outermost first (numpy/PyTorch order): ne reversed
  std::int64_t numel() const;
};

class GgufFile {
 public:
  static GgufFile open(const std::string& path);
  // Validates bytes the caller keeps alive (the fuzzer's entry point); `name` is used in messages.
  static GgufFile parse(std::span<const std::byte> bytes, const std::string& name);

  const std::string& name() const { return name_; }
  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  // In file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  std::uint64_t data_offset() const { return data_offset_; }  // where the data section starts
  std::shared_ptr<const void> owner() const { return file_; }

 private:
  std::string name_;
  std::shared_ptr<const MappedFile> file_;
  std::uint32_t version_ = 3;
  std::uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensor> tensors_;
  std::uint64_t data_offset_ = 0;
};

// Bytes of a tensor of `type` with `ne` (ggml order); throws when ne[0] is not a multiple of the block.
std::uint64_t ggml_tensor_bytes(std::uint32_t type, const std::vector<std::int64_t>& ne);

// Writes a GGUF v3 file atomically, streaming: the header, metadata and tensor infos are known first (the
// offsets follow from each tensor's type and shape), then each tensor's data is written in order with
// write_data(), then commit(). Nothing appears at `path` unless commit() succeeds.
class GgufWriter {
 public:
  struct Info {
    std::string name;
    std::vector<std::int64_t> ne;  // ggml order
    std::uint32_t type;
  };
  // Validates names (unique, < 64 bytes, UTF-8), keys and types; `alignment` comes from
  // general.alignment when the metadata has it (a u32 power of two), else 32.
  GgufWriter(const std::string& path, std::vector<std::pair<std::string, GgufValue>> metadata,
             std::vector<Info> tensors);
  ~GgufWriter();
  // What a writer with these arguments lays out, without writing (validated the same way): where the
  // data section starts (header, metadata and tensor infos, padded), the alignment every tensor's data is
  // padded to, and the whole file's size.
  struct Layout {
    std::uint64_t data_offset = 0;
    std::uint64_t alignment = 32;
    std::uint64_t file_bytes = 0;
  };
  static Layout layout(const std::vector<std::pair<std::string, GgufValue>>& metadata,
                       const std::vector<Info>& tensors);
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;
  // The next tensor's bytes (exactly ggml_tensor_bytes of its info), in the order given; may come in
  // several calls (pieces), as long as they add up.
  void write_data(std::span<const std::byte> piece);
  void commit();
  std::size_t tensors_written() const { return next_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::size_t next_ = 0;
};

}  // namespace qk::io
