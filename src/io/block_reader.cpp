// BlockReader: opening with O_DIRECT or falling back, choosing the engine; the pread pool engine.
#include "quantkit/io/block_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "block_reader_engine.hpp"
#include "quantkit/core/error.hpp"

namespace qk::io {

const char* to_string(ReadBackend backend) {
  switch (backend) {
    case ReadBackend::kAuto:
      return "auto";
    case ReadBackend::kIoUring:
      return "io_uring";
    case ReadBackend::kPread:
      return "pread";
  }
  return "?";
}

ReadBackend parse_read_backend(const std::string& text) {
  if (text == "auto") return ReadBackend::kAuto;
  if (text == "io_uring" || text == "uring") return ReadBackend::kIoUring;
  if (text == "pread") return ReadBackend::kPread;
  throw Error("unknown I/O backend '" + text + "' (expected auto, io_uring or pread)");
}

void pread_fully(int fd, const ReadRequest& request, const std::string& path, std::int64_t file_size) {
  std::int64_t done = 0;
  while (done < request.length && request.offset + done < file_size) {
    const ssize_t n = ::pread(fd, request.dst + done, static_cast<std::size_t>(request.length - done),
                              static_cast<off_t>(request.offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": read of " + std::to_string(request.length) + " bytes at offset " +
                  std::to_string(request.offset) + " failed: " + std::strerror(errno));
    }
    if (n == 0)
      throw Error(path + ": the file ended at byte " + std::to_string(request.offset + done) +
                  ", before its " + std::to_string(file_size) +
                  " bytes when opened (truncated while reading?)");
    done += n;
  }
}

namespace {

// Threads that each take the next request and pread() it; the calling thread works too. With T threads
// blocked in the kernel, T reads are in flight.
class PreadPool final : public BlockReader::Engine {
 public:
  explicit PreadPool(int threads) {
    try {
      for (int t = 0; t < threads - 1; ++t) workers_.emplace_back([this] { work(); });
    } catch (...) {
      stop_all();  // joinable threads must be joined before the vector goes
      throw;
    }
  }
  ~PreadPool() override { stop_all(); }
  ReadBackend backend() const override { return ReadBackend::kPread; }

  void read(int fd, std::span<const ReadRequest> requests, const std::string& path,
            std::int64_t file_size) override {
    if (requests.empty()) return;
    {
      const std::lock_guard lock(mutex_);
      fd_ = fd;
      file_size_ = file_size;
      path_ = &path;
      requests_ = requests;
      next_.store(0);
      error_ = nullptr;
      active_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return active_ == 0; });
    requests_ = {};
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void drain() {
    for (;;) {
      const std::size_t i = next_.fetch_add(1);
      if (i >= requests_.size()) return;
      try {
        pread_fully(fd_, requests_[i], *path_, file_size_);
      } catch (...) {
        const std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }
  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      drain();
      const std::lock_guard lock(mutex_);
      if (--active_ == 0) done_.notify_all();
    }
  }

  void stop_all() {
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  bool stop_ = false;
  std::uint64_t generation_ = 0;
  int active_ = 0;
  int fd_ = -1;
  std::int64_t file_size_ = 0;
  const std::string* path_ = nullptr;
  std::span<const ReadRequest> requests_;
  std::atomic<std::size_t> next_{0};
  std::exception_ptr error_;
};

}  // namespace

std::unique_ptr<BlockReader::Engine> make_pread_engine(int threads) {
  return std::make_unique<PreadPool>(std::max(1, threads));
}

namespace {

// Whether fd, opened with O_DIRECT, can really read: some file systems accept the flag at open and fail
// the reads with EINVAL. Reads the first block into an aligned buffer.
bool direct_read_works(int fd) {
  auto* block =
      static_cast<std::uint8_t*>(::operator new[](kDirectAlignment, std::align_val_t{kDirectAlignment}));
  const ssize_t n = ::pread(fd, block, kDirectAlignment, 0);
  const bool ok = n >= 0 || errno != EINVAL;
  ::operator delete[](block, std::align_val_t{kDirectAlignment});
  return ok;
}

}  // namespace

BlockReader::BlockReader(const std::string& path, const BlockReaderOptions& options) : path_(path) {
  int fd = -1;
  if (options.direct) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    const int open_errno = errno;
    if (fd >= 0 && direct_read_works(fd)) {
      direct_ = true;
    } else if (fd >= 0 || open_errno == EINVAL) {
      if (fd >= 0) ::close(fd);
      fd = -1;
      fallback_reason_ = "the file system refuses O_DIRECT, reading through the page cache";
    }
    // Any other open error is the file's own problem (missing, unreadable): the buffered open below
    // reports it.
  } else {
    fallback_reason_ = "direct I/O not asked for";
  }
  if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  fd_ = fd;
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int stat_errno = errno;
    ::close(fd_);
    throw Error(path + ": cannot stat: " + std::strerror(stat_errno));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(path + ": not a regular file");
  }
  file_size_ = st.st_size;
  const int depth = std::max(1, options.queue_depth);
  std::string why_not;
  if (options.backend != ReadBackend::kPread) engine_ = make_uring_engine(depth, &why_not);
  if (!engine_) {
    if (options.backend == ReadBackend::kIoUring) {
      ::close(fd_);
      throw Error(path + ": io_uring was asked for but cannot run here: " + why_not);
    }
    if (options.backend == ReadBackend::kAuto) {
      fallback_reason_ += std::string(fallback_reason_.empty() ? "" : "; ") + "io_uring unavailable (" +
                          why_not + "), using a pread thread pool";
    }
    engine_ = make_pread_engine(std::max(1, depth / 4));
  }
}

BlockReader::~BlockReader() {
  engine_.reset();
  if (fd_ >= 0) ::close(fd_);
}

ReadBackend BlockReader::backend() const { return engine_->backend(); }

void BlockReader::read(std::span<const ReadRequest> requests) {
  if (direct_) {
    for (const ReadRequest& r : requests) {
      if (r.offset % kDirectAlignment != 0 || r.length % kDirectAlignment != 0 ||
          reinterpret_cast<std::uintptr_t>(r.dst) % kDirectAlignment != 0)
        throw Error(path_ + ": a direct read must be aligned to " + std::to_string(kDirectAlignment) +
                    " bytes (offset " + std::to_string(r.offset) + ", length " + std::to_string(r.length) +
                    ")");
    }
  }
  engine_->read(fd_, requests, path_, file_size_);
}

void drop_page_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  ::fdatasync(fd);  // dirty pages cannot be dropped
  const int rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (rc != 0) throw Error(path + ": posix_fadvise(DONTNEED) failed: " + std::strerror(rc));
}

}  // namespace qk::io
