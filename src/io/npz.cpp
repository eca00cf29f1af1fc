// .npz archives through libzip: members "<name>.npy", stored or deflated, zip64 when large.
#include "quantkit/io/npz.hpp"

#include <sys/stat.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <string_view>

#include "quantkit/io/atomic_file.hpp"

namespace qk::io {

namespace {

constexpr std::string_view kSuffix = ".npy";

// Deflate never expands data more than 1032 to 1 (258-byte matches in a few bits each): a member whose
// stated size exceeds that is corrupt, and checking before allocating keeps a forged size from asking
// for terabytes.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

// A zip with no members is only its end-of-central-directory record; libzip deletes an archive that
// would be empty instead of writing it, and np.savez() with no arrays writes exactly these 22 bytes.
constexpr unsigned char kEmptyZip[22] = {'P', 'K', 5, 6};

// Member timestamps are fixed so that the same arrays always give the same bytes (2000-01-01 UTC; zip
// stores local time, so the exact stamp varies with the time zone).
constexpr std::time_t kMemberTime = 946684800;

std::string libzip_message(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

// An open archive; what it was opened from and that source's size, for messages and sanity checks.
class Archive {
 public:
  Archive(zip_t* zip, std::string label, std::uint64_t size)
      : zip_(zip), label_(std::move(label)), size_(size) {}
  Archive(const Archive&) = delete;
  Archive& operator=(const Archive&) = delete;
  ~Archive() { zip_discard(zip_); }

  zip_t* get() const { return zip_; }
  const std::string& label() const { return label_; }
  std::uint64_t size() const { return size_; }

 private:
  zip_t* zip_;
  std::string label_;
  std::uint64_t size_;
};

// ZIP_CHECKCONS: compare every local header with the central directory, so that a damaged archive
// fails on open rather than somewhere in the middle of a member.
constexpr int kOpenFlags = ZIP_RDONLY | ZIP_CHECKCONS;

std::unique_ptr<Archive> open_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  if (st.st_size == 0) throw Error(path + ": not an .npz archive (empty file)");
  int code = 0;
  zip_t* zip = zip_open(path.c_str(), kOpenFlags, &code);
  if (zip == nullptr) throw Error(path + ": not a valid .npz archive: " + libzip_message(code));
  return std::make_unique<Archive>(zip, path, static_cast<std::uint64_t>(st.st_size));
}

std::unique_ptr<Archive> open_bytes(std::span<const std::byte> bytes, const std::string& name) {
  if (bytes.empty()) throw Error(name + ": not an .npz archive (empty)");
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) {
    const std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw Error(name + ": " + text);
  }
  zip_t* zip = zip_open_from_source(source, kOpenFlags, &error);
  if (zip == nullptr) {
    zip_source_free(source);  // still ours: only a successful open takes the source over
    const std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw Error(name + ": not a valid .npz archive: " + text);
  }
  zip_error_fini(&error);
  return std::make_unique<Archive>(zip, name, bytes.size());
}

std::string member_label(const Archive& archive, const std::string& name) {
  return archive.label() + "['" + name + "']";
}

struct Member {
  std::string name;  // without ".npy"
  zip_uint64_t index;
};

std::vector<Member> list_members(const Archive& archive) {
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  if (count < 0) throw Error(archive.label() + ": cannot list the archive: " + zip_strerror(archive.get()));
  std::vector<Member> members;
  for (zip_int64_t i = 0; i < count; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    const char* raw = zip_get_name(archive.get(), index, 0);
    if (raw == nullptr)
      throw Error(archive.label() + ": cannot read the name of member " + std::to_string(i));
    const std::string file_name = raw;
    if (file_name.size() < kSuffix.size() || !file_name.ends_with(kSuffix)) {
      throw Error(archive.label() + ": member '" + file_name + "' is not a .npy array");
    }
    members.push_back({file_name.substr(0, file_name.size() - kSuffix.size()), index});
  }
  return members;
}

class MemberFile {
 public:
  explicit MemberFile(zip_file_t* file) : file_(file) {}
  MemberFile(const MemberFile&) = delete;
  MemberFile& operator=(const MemberFile&) = delete;
  ~MemberFile() { zip_fclose(file_); }
  zip_file_t* get() const { return file_; }

 private:
  zip_file_t* file_;
};

NpyArray read_member(const Archive& archive, const Member& member) {
  const std::string label = member_label(archive, member.name);
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(archive.get(), member.index, 0, &st) != 0) {
    throw Error(label + ": cannot stat: " + zip_strerror(archive.get()));
  }
  constexpr zip_uint64_t kNeeded = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  if ((st.valid & kNeeded) != kNeeded)
    throw Error(label + ": the archive directory lacks the member's sizes");
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
    throw Error(label + ": encrypted members are not supported");
  }
  if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE) {
    throw Error(label + ": unsupported compression method " + std::to_string(st.comp_method) +
                " (np.savez stores, np.savez_compressed deflates)");
  }
  const bool sizes_possible =
      st.comp_size <= archive.size() &&
      (st.comp_method == ZIP_CM_STORE ? st.size == st.comp_size
                                      : st.size / kMaxDeflateRatio <= st.comp_size + 1);
  if (!sizes_possible || st.size > std::numeric_limits<std::size_t>::max() / 2) {
    throw Error(label + ": corrupt archive (member size " + std::to_string(st.size) + " from " +
                std::to_string(st.comp_size) + " stored bytes)");
  }

  zip_file_t* opened = zip_fopen_index(archive.get(), member.index, 0);
  if (opened == nullptr) throw Error(label + ": cannot open: " + zip_strerror(archive.get()));
  const MemberFile file(opened);
  const auto want = static_cast<std::size_t>(st.size);
  std::vector<std::byte> bytes;
  std::size_t have = 0;
  while (have < want) {
    // Grow as data actually arrives: a corrupt deflate stream stops long before a large stated size.
    const std::size_t step = std::min(want - have, std::max<std::size_t>(have, std::size_t{1} << 20));
    bytes.resize(have + step);
    const zip_int64_t n = zip_fread(file.get(), bytes.data() + have, step);
    if (n < 0) throw Error(label + ": corrupt member: " + zip_file_strerror(file.get()));
    if (n == 0) {
      throw Error(label + ": truncated member: " + std::to_string(have) + " of " + std::to_string(want) +
                  " bytes");
    }
    have += static_cast<std::size_t>(n);
  }
  // One more read takes libzip to the end of the member, where it checks the CRC.
  std::byte extra{};
  const zip_int64_t n = zip_fread(file.get(), &extra, 1);
  if (n < 0) throw Error(label + ": corrupt member: " + zip_file_strerror(file.get()));
  if (n > 0) throw Error(label + ": corrupt member: more data than the archive directory states");
  return parse_npy(std::move(bytes), label);
}

std::map<std::string, NpyArray> read_all(const Archive& archive) {
  std::map<std::string, NpyArray> arrays;
  for (const Member& member : list_members(archive)) {
    if (arrays.contains(member.name))
      throw Error(archive.label() + ": duplicate member '" + member.name + "'");
    arrays.emplace(member.name, read_member(archive, member));
  }
  return arrays;
}

// Closes an archive being written on every path: zip_close on success is the caller's, discard otherwise.
class WritingArchive {
 public:
  explicit WritingArchive(zip_t* zip) : zip_(zip) {}
  WritingArchive(const WritingArchive&) = delete;
  WritingArchive& operator=(const WritingArchive&) = delete;
  ~WritingArchive() {
    if (zip_ != nullptr) zip_discard(zip_);
  }
  zip_t* get() const { return zip_; }
  void closed() { zip_ = nullptr; }

 private:
  zip_t* zip_;
};

}  // namespace

std::vector<std::string> npz_names(const std::string& path) {
  const auto archive = open_file(path);
  std::vector<std::string> names;
  for (const Member& member : list_members(*archive)) names.push_back(member.name);
  return names;
}

NpyArray read_npz_member(const std::string& path, const std::string& name) {
  const auto archive = open_file(path);
  const std::string file_name = name + std::string(kSuffix);
  const zip_int64_t index = zip_name_locate(archive->get(), file_name.c_str(), 0);
  if (index < 0) {
    std::string present;
    const zip_int64_t count = std::max<zip_int64_t>(zip_get_num_entries(archive->get(), 0), 0);
    for (zip_int64_t i = 0; i < count; ++i) {
      const char* raw = zip_get_name(archive->get(), static_cast<zip_uint64_t>(i), 0);
      present += (present.empty() ? "" : ", ") + std::string(raw != nullptr ? raw : "?");
    }
    throw Error(path + ": no member '" + name +
                "' (the archive holds: " + (present.empty() ? "nothing" : present) + ")");
  }
  return read_member(*archive, Member{name, static_cast<zip_uint64_t>(index)});
}

std::map<std::string, NpyArray> read_npz(const std::string& path) { return read_all(*open_file(path)); }

std::map<std::string, NpyArray> read_npz_bytes(std::span<const std::byte> bytes, const std::string& name) {
  return read_all(*open_bytes(bytes, name));
}

void NpzWriter::add_encoded(const std::string& name, std::vector<std::byte> npy_bytes) {
  for (const auto& member : members_) {
    if (member.first == name) throw Error("NpzWriter: member '" + name + "' added twice");
  }
  parse_npy_header(npy_bytes,
                   "NpzWriter: member '" + name + "'");  // an inconsistent member fails here, not in numpy
  members_.emplace_back(name, std::move(npy_bytes));
}

void NpzWriter::write(const std::string& path) const {
  AtomicFile file(path);
  if (members_.empty()) {
    file.write(std::as_bytes(std::span(kEmptyZip)));
    file.commit();
    return;
  }
  file.close_descriptor();
  int code = 0;
  // ZIP_TRUNCATE: AtomicFile created the temporary file empty, and libzip refuses an empty non-zip file.
  WritingArchive zip(zip_open(file.temp_path().c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code));
  if (zip.get() == nullptr) throw Error(path + ": cannot create the archive: " + libzip_message(code));
  for (const auto& [name, bytes] : members_) {
    const std::string fail = path + ": cannot add member '" + name + "': ";
    zip_source_t* source = zip_source_buffer(zip.get(), bytes.data(), bytes.size(), 0);
    if (source == nullptr) throw Error(fail + zip_strerror(zip.get()));
    const zip_int64_t index =
        zip_file_add(zip.get(), (name + std::string(kSuffix)).c_str(), source, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(source);
      throw Error(fail + zip_strerror(zip.get()));
    }
    const auto at = static_cast<zip_uint64_t>(index);
    if (zip_set_file_compression(zip.get(), at, compress_ ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0 ||
        zip_file_set_mtime(zip.get(), at, kMemberTime, 0) != 0) {
      throw Error(fail + zip_strerror(zip.get()));
    }
  }
  if (zip_close(zip.get()) != 0)
    throw Error(path + ": writing the archive failed: " + zip_strerror(zip.get()));
  zip.closed();
  file.commit();
}

}  // namespace qk::io
