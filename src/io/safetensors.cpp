// safetensors: dtype table, the validating reader and the writer (see io/safetensors.hpp).
#include "quantkit/io/safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "quantkit/core/error.hpp"
#include "quantkit/core/fp8.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/io/atomic_file.hpp"

namespace qk::io {

namespace {

struct StDTypeInfo {
  StDType dtype;
  const char* name;
  std::size_t size;
  bool is_float;
};

constexpr std::array<StDTypeInfo, 15> kStDTypes{{
    {StDType::kBool, "BOOL", 1, false},
    {StDType::kU8, "U8", 1, false},
    {StDType::kI8, "I8", 1, false},
    {StDType::kF8E5M2, "F8_E5M2", 1, true},
    {StDType::kF8E4M3, "F8_E4M3", 1, true},
    {StDType::kI16, "I16", 2, false},
    {StDType::kU16, "U16", 2, false},
    {StDType::kF16, "F16", 2, true},
    {StDType::kBF16, "BF16", 2, true},
    {StDType::kI32, "I32", 4, false},
    {StDType::kU32, "U32", 4, false},
    {StDType::kF32, "F32", 4, true},
    {StDType::kI64, "I64", 8, false},
    {StDType::kU64, "U64", 8, false},
    {StDType::kF64, "F64", 8, true},
}};

const StDTypeInfo& info(StDType d) {
  for (const auto& i : kStDTypes)
    if (i.dtype == d) return i;
  throw Error("safetensors: unknown dtype value " + std::to_string(static_cast<int>(d)));
}

// The reference implementation's limit on the header (safetensors' MAX_HEADER_SIZE).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

std::uint64_t read_le64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

// A non-negative integer that fits an int64, or an error naming `what`.
std::uint64_t count_of(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_unsigned()) throw Error(what + " is not a non-negative integer");
  const auto n = v.get<std::uint64_t>();
  if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) throw Error(what + " is too large");
  return n;
}

StTensor tensor_info(const std::string& tensor, const nlohmann::json& v) {
  const std::string where = "tensor '" + tensor + "'";
  if (!v.is_object()) throw Error(where + ": not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) throw Error(where + ": no \"" + field + "\"");
  if (!v["dtype"].is_string()) throw Error(where + ": \"dtype\" is not a string");
  StTensor t;
  t.name = tensor;
  try {
    t.dtype = st_dtype_from_name(v["dtype"].get<std::string>());
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  const nlohmann::json& shape = v["shape"];
  if (!shape.is_array()) throw Error(where + ": \"shape\" is not an array");
  // Elements and bytes in 64 bits, refusing any product that overflows (the reference's ValidationOverflow).
  std::uint64_t numel = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::uint64_t dim = count_of(shape[i], where + ": shape[" + std::to_string(i) + "]");
    if (dim != 0 && numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / dim)
      throw Error(where + ": shape's element count overflows");
    numel *= dim;
    t.shape.push_back(static_cast<std::int64_t>(dim));
  }
  const std::uint64_t size = st_dtype_size(t.dtype);
  if (numel > std::numeric_limits<std::uint64_t>::max() / size) throw Error(where + ": byte count overflows");
  const nlohmann::json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) throw Error(where + ": \"data_offsets\" is not [begin, end]");
  t.begin = count_of(offsets[0], where + ": data_offsets[0]");
  t.end = count_of(offsets[1], where + ": data_offsets[1]");
  if (t.end < t.begin) throw Error(where + ": data_offsets end before they begin");
  if (t.end - t.begin != numel * size)
    throw Error(where + ": data_offsets span " + std::to_string(t.end - t.begin) + " bytes, but shape and dtype " +
                "need " + std::to_string(numel * size));
  return t;
}

}  // namespace

std::size_t st_dtype_size(StDType d) { return info(d).size; }
const char* st_dtype_name(StDType d) { return info(d).name; }
bool st_dtype_is_float(StDType d) { return info(d).is_float; }

StDType st_dtype_from_name(const std::string& name) {
  for (const auto& i : kStDTypes)
    if (name == i.name) return i.dtype;
  throw Error("unknown safetensors dtype '" + name + "'");
}

std::int64_t StTensor::numel() const {
  std::int64_t n = 1;
  for (const std::int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  SafetensorsFile f = parse(file->bytes(), path);
  f.file_ = std::move(file);
  return f;
}

SafetensorsFile SafetensorsFile::parse(std::span<const std::byte> bytes, const std::string& name) {
  SafetensorsFile f;
  f.name_ = name;
  if (bytes.size() < 8)
    throw Error(name + ": not a safetensors file: " + std::to_string(bytes.size()) +
                " bytes, shorter than the 8-byte header length");
  const std::uint64_t n = read_le64(bytes.data());
  if (n > kMaxHeaderBytes)
    throw Error(name + ": safetensors header length " + std::to_string(n) + " exceeds the limit of " +
                std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > bytes.size() - 8)
    throw Error(name + ": safetensors header length " + std::to_string(n) + " runs past the end of the file (" +
                std::to_string(bytes.size()) + " bytes)");
  f.header_bytes_ = n;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<std::size_t>(n));

  // nlohmann keeps the last of two equal keys silently; the callback sees every top-level key first.
  std::set<std::string> seen;
  std::string twice;
  const auto note_keys = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && twice.empty() &&
        !seen.insert(parsed.get<std::string>()).second)
      twice = parsed.get<std::string>();
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, note_keys);  // also rejects invalid UTF-8
  } catch (const nlohmann::json::exception& e) {
    throw Error(name + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw Error(name + ": safetensors header is not a JSON object");
  if (!twice.empty()) throw Error(name + ": safetensors header names '" + twice + "' twice");

  try {
    for (const auto& [key, value] : header.items()) {
      if (key == kMetadataKey) {
        if (value.is_null()) continue;
        if (!value.is_object()) throw Error("\"__metadata__\" is not an object");
        for (const auto& [k, v] : value.items()) {
          if (!v.is_string()) throw Error("\"__metadata__\" value of '" + k + "' is not a string");
          f.metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      f.tensors_.push_back(tensor_info(key, value));
    }
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }

  // In offset order the tensors must tile the data section exactly: each starts where the last ended.
  std::stable_sort(f.tensors_.begin(), f.tensors_.end(), [](const StTensor& a, const StTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const std::uint64_t data_bytes = bytes.size() - 8 - n;
  const std::byte* data = bytes.data() + 8 + n;
  std::uint64_t expected = 0;
  for (StTensor& t : f.tensors_) {
    if (t.begin != expected)
      throw Error(name + ": tensor '" + t.name + "' starts at byte " + std::to_string(t.begin) +
                  " of the data section where " + std::to_string(expected) + " was expected (" +
                  (t.begin < expected ? "it overlaps the tensor before it)" : "a gap)"));
    if (t.end > data_bytes)
      throw Error(name + ": tensor '" + t.name + "' ends at byte " + std::to_string(t.end) +
                  " past the data section's " + std::to_string(data_bytes) + " bytes (truncated file?)");
    t.data = std::span<const std::byte>(data + t.begin, static_cast<std::size_t>(t.end - t.begin));
    expected = t.end;
  }
  if (expected != data_bytes)
    throw Error(name + ": the data section holds " + std::to_string(data_bytes) + " bytes but the tensors end at " +
                std::to_string(expected));
  return f;
}

bool SafetensorsFile::contains(const std::string& tensor) const {
  return std::any_of(tensors_.begin(), tensors_.end(), [&](const StTensor& t) { return t.name == tensor; });
}

const StTensor& SafetensorsFile::tensor(const std::string& tensor) const {
  for (const StTensor& t : tensors_)
    if (t.name == tensor) return t;
  throw Error(name_ + ": no tensor named '" + tensor + "'");
}

std::vector<float> st_to_float(const StTensor& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  st_to_float(t, 0, out);
  return out;
}

void st_to_float(const StTensor& t, std::int64_t first, std::span<float> out) {
  if (!st_dtype_is_float(t.dtype))
    throw Error("tensor '" + t.name + "' is " + st_dtype_name(t.dtype) + ", not a floating type");
  if (first < 0 || first > t.numel() || static_cast<std::int64_t>(out.size()) > t.numel() - first)
    throw Error("tensor '" + t.name + "': elements [" + std::to_string(first) + ", +" +
                std::to_string(out.size()) + ") are outside its " + std::to_string(t.numel()));
  const std::size_t size = st_dtype_size(t.dtype);
  const std::byte* p = t.data.data() + static_cast<std::size_t>(first) * size;
  // memcpy per element: the data section is not aligned to the element size in general.
  for (std::size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype) {
      case StDType::kF32:
        std::memcpy(&out[i], p + 4 * i, 4);
        break;
      case StDType::kF64: {
        double v;
        std::memcpy(&v, p + 8 * i, 8);
        out[i] = static_cast<float>(v);
        break;
      }
      case StDType::kF16:
      case StDType::kBF16: {
        std::uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        out[i] = t.dtype == StDType::kF16 ? half_bits_to_float(bits) : bfloat16_bits_to_float(bits);
        break;
      }
      case StDType::kF8E4M3:
      case StDType::kF8E5M2:
        out[i] = fp8_to_float(static_cast<std::uint8_t>(p[i]),
                              t.dtype == StDType::kF8E4M3 ? Fp8Format::kE4M3 : Fp8Format::kE5M2);
        break;
      default:
        break;  // not reached: checked above
    }
  }
}

SafetensorsWriter::SafetensorsWriter(const std::string& folder)
    : spill_folder_(folder.empty() ? "." : folder) {
  // O_TMPFILE: a file with no name, gone when closed whatever happens; where the file system lacks it,
  // a named one unlinked at once.
  spill_fd_ = ::open(spill_folder_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (spill_fd_ < 0) {
    std::string name = spill_folder_ + "/.qk-spill-XXXXXX";
    spill_fd_ = ::mkostemp(name.data(), O_CLOEXEC);
    if (spill_fd_ >= 0) ::unlink(name.c_str());
  }
  if (spill_fd_ < 0)
    throw Error(spill_folder_ +
                ": cannot create a temporary file for the tensors' data: " + std::strerror(errno));
}

SafetensorsWriter::~SafetensorsWriter() {
  if (spill_fd_ >= 0) ::close(spill_fd_);
}

void SafetensorsWriter::add(const std::string& name, StDType dtype, const Shape& shape,
                            std::span<const std::byte> data) {
  if (name == kMetadataKey) throw Error("safetensors: '__metadata__' cannot name a tensor");
  for (const Entry& e : entries_)
    if (e.name == name) throw Error("safetensors: tensor '" + name + "' added twice");
  std::uint64_t numel = 1;
  for (const std::int64_t d : shape) {
    if (d < 0) throw Error("safetensors: tensor '" + name + "' has a negative dimension");
    numel *= static_cast<std::uint64_t>(d);
  }
  if (numel * st_dtype_size(dtype) != data.size())
    throw Error("safetensors: tensor '" + name + "' has " + std::to_string(data.size()) + " bytes, its shape and " +
                st_dtype_name(dtype) + " need " + std::to_string(numel * st_dtype_size(dtype)));
  Entry e{name, dtype, shape, {}, spill_bytes_, data.size()};
  if (spill_fd_ < 0) {
    e.data.assign(data.begin(), data.end());
  } else {
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::pwrite(spill_fd_, data.data() + done, data.size() - done,
                                 static_cast<off_t>(spill_bytes_ + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        throw Error(spill_folder_ + ": cannot write the temporary data of tensor '" + name +
                    "': " + std::strerror(n < 0 ? errno : ENOSPC));
      done += static_cast<std::size_t>(n);
    }
    spill_bytes_ += data.size();
  }
  entries_.push_back(std::move(e));
}

std::vector<const SafetensorsWriter::Entry*> SafetensorsWriter::ordered() const {
  std::vector<const Entry*> order;
  for (const Entry& e : entries_) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    const std::size_t sa = st_dtype_size(a->dtype), sb = st_dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  return order;
}

std::string SafetensorsWriter::header_text(const std::vector<const Entry*>& order) const {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) header[kMetadataKey] = metadata_;
  std::uint64_t offset = 0;
  for (const Entry* e : order) {
    header[e->name] = {{"dtype", st_dtype_name(e->dtype)},
                       {"shape", e->shape},
                       {"data_offsets", {offset, offset + e->bytes}}};
    offset += e->bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception&) {
    throw Error("safetensors: a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text;
}

template <class Sink>
void SafetensorsWriter::for_each_piece(const Entry& e, Sink&& sink) const {
  if (spill_fd_ < 0) {
    sink(std::span<const std::byte>(e.data));
    return;
  }
  constexpr std::size_t kPiece = std::size_t{8} << 20;
  std::vector<std::byte> buffer(static_cast<std::size_t>(std::min<std::uint64_t>(e.bytes, kPiece)));
  for (std::uint64_t done = 0; done < e.bytes;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(e.bytes - done, kPiece));
    const ssize_t n = ::pread(spill_fd_, buffer.data(), want, static_cast<off_t>(e.spill_offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error(spill_folder_ + ": cannot read back the temporary data of tensor '" + e.name +
                  "': " + (n < 0 ? std::strerror(errno) : "file shorter than written"));
    sink(std::span<const std::byte>(buffer.data(), static_cast<std::size_t>(n)));
    done += static_cast<std::uint64_t>(n);
  }
}

std::vector<std::byte> SafetensorsWriter::encode() const {
  const std::vector<const Entry*> order = ordered();
  const std::string head = header_text(order);
  std::vector<std::byte> out;
  std::uint64_t data_bytes = 0;
  for (const Entry* e : order) data_bytes += e->bytes;
  out.reserve(head.size() + static_cast<std::size_t>(data_bytes));
  for (const char c : head) out.push_back(static_cast<std::byte>(c));
  for (const Entry* e : order)
    for_each_piece(
        *e, [&](std::span<const std::byte> piece) { out.insert(out.end(), piece.begin(), piece.end()); });
  return out;
}

void SafetensorsWriter::write(const std::string& path) const {
  const std::vector<const Entry*> order = ordered();
  const std::string head = header_text(order);
  AtomicFile file(path);
  file.write(std::as_bytes(std::span<const char>(head)));
  for (const Entry* e : order)
    for_each_piece(*e, [&](std::span<const std::byte> piece) { file.write(piece); });
  file.commit();
}

}  // namespace qk::io
