// GGUF's streaming writer (see io/gguf.hpp): header, metadata and tensor infos first, then each tensor's
// data padded to the alignment, into an AtomicFile.
#include <set>

#include "gguf_internal.hpp"
#include "quantkit/io/atomic_file.hpp"

namespace qk::io {

using namespace gguf_detail;

struct GgufWriter::Impl {
  AtomicFile file;
  std::vector<std::uint64_t> sizes;  // each tensor's data bytes
  std::uint64_t alignment = 32;
  std::uint64_t written = 0;  // of the current tensor
  explicit Impl(const std::string& path) : file(path) {}
};

namespace {

struct Encoded {
  std::vector<std::byte> head;  // everything before the first tensor's data, padded
  std::vector<std::uint64_t> sizes;
  std::uint64_t alignment = 32;
};

Encoded encode(const std::vector<std::pair<std::string, GgufValue>>& metadata,
               const std::vector<GgufWriter::Info>& tensors) {
  Encoded out;
  std::vector<std::byte>& head = out.head;
  std::uint64_t& alignment = out.alignment;
  std::set<std::string> keys, names;
  for (const auto& [key, value] : metadata) {
    if (key.empty() || !valid_utf8(key))
      throw Error("gguf: metadata key '" + key + "' is empty or not UTF-8");
    if (!keys.insert(key).second) throw Error("gguf: metadata key '" + key + "' given twice");
    check_value(value, key);
    if (key == kAlignmentKey) {
      if (value.type != GgufType::kU32) throw Error(std::string("gguf: ") + kAlignmentKey + " must be u32");
      alignment = value.as_uint(key);
      if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        throw Error(std::string("gguf: ") + kAlignmentKey + " must be a power of 2");
    }
  }
  std::vector<std::uint64_t>& sizes = out.sizes;
  for (const GgufWriter::Info& t : tensors) {
    if (t.name.empty() || t.name.size() >= kMaxName || !valid_utf8(t.name))
      throw Error("gguf: tensor name '" + t.name + "' must be 1 to " + std::to_string(kMaxName - 1) +
                  " bytes of UTF-8");
    if (!names.insert(t.name).second) throw Error("gguf: tensor '" + t.name + "' given twice");
    if (t.ne.size() > kMaxDims) throw Error("gguf: tensor '" + t.name + "' has more than 4 dimensions");
    try {
      sizes.push_back(ggml_tensor_bytes(t.type, t.ne));
    } catch (const Error& e) {
      throw Error("gguf: tensor '" + t.name + "': " + e.what());
    }
  }
  write_bytes(head, "GGUF", 4);
  write_le<std::uint32_t>(head, 3);
  write_le<std::uint64_t>(head, tensors.size());
  write_le<std::uint64_t>(head, metadata.size());
  for (const auto& [key, value] : metadata) {
    write_string(head, key);
    write_le<std::uint32_t>(head, static_cast<std::uint32_t>(value.type));
    write_value(head, value);
  }
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    write_string(head, tensors[i].name);
    write_le<std::uint32_t>(head, static_cast<std::uint32_t>(tensors[i].ne.size()));
    for (const std::int64_t d : tensors[i].ne) write_le<std::int64_t>(head, d);
    write_le<std::uint32_t>(head, tensors[i].type);
    write_le<std::uint64_t>(head, offset);
    offset = pad(offset + sizes[i], alignment);
  }
  if (!tensors.empty()) head.resize(static_cast<std::size_t>(pad(head.size(), alignment)), std::byte{0});
  return out;
}

}  // namespace

GgufWriter::Layout GgufWriter::layout(const std::vector<std::pair<std::string, GgufValue>>& metadata,
                                      const std::vector<Info>& tensors) {
  const Encoded e = encode(metadata, tensors);
  Layout l;
  l.data_offset = e.head.size();
  l.alignment = e.alignment;
  l.file_bytes = l.data_offset;
  for (const std::uint64_t size : e.sizes) l.file_bytes += pad(size, e.alignment);
  return l;
}

GgufWriter::GgufWriter(const std::string& path, std::vector<std::pair<std::string, GgufValue>> metadata,
                       std::vector<Info> tensors) {
  Encoded e = encode(metadata, tensors);
  impl_ = std::make_unique<Impl>(path);
  impl_->sizes = std::move(e.sizes);
  impl_->alignment = e.alignment;
  impl_->file.write(e.head);
}

GgufWriter::~GgufWriter() = default;

void GgufWriter::write_data(std::span<const std::byte> piece) {
  while (!piece.empty()) {
    while (next_ < impl_->sizes.size() && impl_->sizes[next_] == 0) ++next_;  // nothing to write
    if (next_ >= impl_->sizes.size()) throw Error("gguf: more tensor data than the tensor infos describe");
    const std::uint64_t left = impl_->sizes[next_] - impl_->written;
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, piece.size()));
    impl_->file.write(piece.first(n));
    impl_->written += n;
    piece = piece.subspan(n);
    if (impl_->written == impl_->sizes[next_]) {
      // Zero padding to the alignment after every tensor, the last included (as ggml's writer does).
      const std::uint64_t padding = pad(impl_->written, impl_->alignment) - impl_->written;
      const std::vector<std::byte> zeros(static_cast<std::size_t>(padding));
      impl_->file.write(zeros);
      impl_->written = 0;
      ++next_;
    }
  }
}

void GgufWriter::commit() {
  while (next_ < impl_->sizes.size() && impl_->sizes[next_] == 0) ++next_;
  if (next_ != impl_->sizes.size() || impl_->written != 0)
    throw Error("gguf: " + std::to_string(impl_->sizes.size() - next_) + " tensor(s) still lack their data");
  impl_->file.commit();
}

}  // namespace qk::io
