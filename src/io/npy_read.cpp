// .npy reading: a file read whole or memory-mapped, a buffer handed over in memory, and the NpyArray
// accessors that need its storage.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "npy_internal.hpp"
#include "quantkit/io/mapped_file.hpp"

namespace qk::io {

namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

NpyArray::~NpyArray() = default;

bool NpyArray::is_native_c_order() const {
  if (header_.big_endian) return false;
  if (header_.fortran_order) {
    // With at most one dimension longer than 1, Fortran and C order are the same bytes.
    int non_unit_dims = 0;
    for (const std::int64_t d : header_.shape) non_unit_dims += d > 1 ? 1 : 0;
    if (non_unit_dims > 1) return false;
  }
  // A hand-made file may put the data at any offset; a misaligned T* would be undefined behaviour.
  const std::size_t align = header_.dtype == DType::kUnicode ? 4 : header_.item_size;
  return align <= 1 || reinterpret_cast<std::uintptr_t>(raw_.data()) % align == 0;
}

std::string NpyArray::as_string() const {
  if (header_.dtype != DType::kUnicode) {
    throw Error(name_ + ": expected a unicode string, got dtype " + std::string(dtype_name(header_.dtype)));
  }
  if (header_.numel != 1) {
    throw Error(name_ + ": expected a single string, got shape " + shape_string(header_.shape));
  }
  std::u32string text;
  for (std::size_t i = 0; i < header_.item_size / 4; ++i) {
    text += static_cast<char32_t>(detail::load<std::uint32_t>(raw_.data(), i, header_.big_endian));
  }
  // numpy pads short strings with NUL and drops trailing NULs when reading; so do we.
  while (!text.empty() && text.back() == U'\0') text.pop_back();
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t cp = text[i];
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      throw Error(name_ + ": invalid code point " + std::to_string(cp) + " at character " +
                  std::to_string(i));
    }
    detail::append_utf8(out, cp);
  }
  return out;
}

void NpyArray::release(std::size_t offset, std::size_t len) const {
  if (!storage_ || (storage_->map == nullptr && !storage_->owner_mapped) || offset >= raw_.size()) return;
  release_mapped_pages(raw_.subspan(offset, std::min(len, raw_.size() - offset)));
}

NpyArray parse_npy(std::vector<std::byte> bytes, const std::string& name) {
  auto storage = std::make_shared<NpyArray::Storage>();
  storage->bytes = std::move(bytes);
  NpyHeader header = parse_npy_header(storage->bytes, name);
  const std::span<const std::byte> raw(storage->bytes.data() + header.data_offset, header.data_bytes);
  return NpyArray(name, std::move(header), std::move(storage), raw);
}

namespace {

NpyHeader plain_header(const std::string& name, DType dtype, const Shape& shape, std::size_t bytes) {
  NpyHeader header;
  header.dtype = dtype;
  header.shape = shape;
  header.item_size = dtype_size(dtype);
  std::int64_t numel = 1;
  for (const std::int64_t d : shape) {
    if (d < 0 || (d > 0 && numel > std::numeric_limits<std::int64_t>::max() / d))
      throw Error(name + ": shape " + shape_string(shape) + " is negative or overflows");
    numel *= d;
  }
  header.numel = numel;
  header.data_bytes = static_cast<std::size_t>(numel) * header.item_size;
  if (header.data_bytes / header.item_size != static_cast<std::size_t>(numel) || header.data_bytes != bytes)
    throw Error(name + ": " + std::to_string(bytes) + " bytes of data for shape " + shape_string(shape) +
                " of " + dtype_name(dtype) + " (" + std::to_string(header.data_bytes) + " expected)");
  return header;
}

}  // namespace

NpyArray borrow_npy(std::string name, DType dtype, const Shape& shape, std::span<const std::byte> data,
                    std::shared_ptr<const void> owner, bool mapped) {
  NpyHeader header = plain_header(name, dtype, shape, data.size());
  auto storage = std::make_shared<NpyArray::Storage>();
  storage->owner = std::move(owner);
  storage->owner_mapped = mapped;
  return NpyArray(std::move(name), std::move(header), std::move(storage), data);
}

NpyArray make_npy(std::string name, DType dtype, const Shape& shape, std::vector<std::byte> data) {
  NpyHeader header = plain_header(name, dtype, shape, data.size());
  auto storage = std::make_shared<NpyArray::Storage>();
  storage->bytes = std::move(data);
  const std::span<const std::byte> raw(storage->bytes);
  return NpyArray(std::move(name), std::move(header), std::move(storage), raw);
}

NpyArray read_npy(const std::string& path, std::size_t mmap_threshold) {
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);

  if (size >= mmap_threshold && size > 0) {
    // A file truncated by someone else while mapped would fault on access (SIGBUS); that is the price
    // of not copying multi-gigabyte weights, and the files we read are not being rewritten in place.
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (map == MAP_FAILED) throw Error(path + ": mmap failed: " + std::strerror(errno));
    auto storage = std::make_shared<NpyArray::Storage>();
    storage->map = map;
    storage->map_size = size;
    ::madvise(map, size, MADV_SEQUENTIAL);
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(map), size);
    NpyHeader header = parse_npy_header(bytes, path);
    const std::span<const std::byte> raw = bytes.subspan(header.data_offset, header.data_bytes);
    return NpyArray(path, std::move(header), std::move(storage), raw);
  }

  std::vector<std::byte> bytes(size);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(path + ": read failed: " + std::strerror(errno));
    if (n == 0) break;  // the file shrank since fstat: parse what is there, the checks will catch it
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return parse_npy(std::move(bytes), path);
}

}  // namespace qk::io
