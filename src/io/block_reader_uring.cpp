// The io_uring engine of BlockReader: up to `depth` reads submitted at once, completions reaped as they
// come, short reads resubmitted for their remainder. Built only with liburing (QK_HAVE_LIBURING); without
// it make_uring_engine says so and the pread pool runs.
#include <cerrno>
#include <cstring>
#include <vector>

#include "block_reader_engine.hpp"
#include "quantkit/core/error.hpp"

#if QK_HAVE_LIBURING
#include <liburing.h>
#endif

namespace qk::io {

#if QK_HAVE_LIBURING
namespace {

class UringEngine final : public BlockReader::Engine {
 public:
  explicit UringEngine(int depth) : depth_(depth) {}
  int init() { return io_uring_queue_init(static_cast<unsigned>(depth_), &ring_, 0); }
  void mark_ready() { ready_ = true; }
  ~UringEngine() override {
    if (ready_) io_uring_queue_exit(&ring_);
  }
  ReadBackend backend() const override { return ReadBackend::kIoUring; }

  void read(int fd, std::span<const ReadRequest> requests, const std::string& path,
            std::int64_t file_size) override {
    // What is left of each request: a short read (not at the end of the file) is resubmitted.
    done_.assign(requests.size(), 0);
    std::size_t next = 0, in_flight = 0;
    while (next < requests.size() || in_flight > 0) {
      while (next < requests.size() && in_flight < static_cast<std::size_t>(depth_)) {
        if (!submit(fd, requests[next], next)) break;
        ++next;
        ++in_flight;
      }
      const int submitted = io_uring_submit(&ring_);
      if (submitted < 0) fail(path, "io_uring_submit", -submitted);
      io_uring_cqe* cqe = nullptr;
      int rc;
      do {
        rc = io_uring_wait_cqe(&ring_, &cqe);
      } while (rc == -EINTR);
      if (rc < 0) fail(path, "io_uring_wait_cqe", -rc);
      // Reap everything complete, not just one.
      while (cqe != nullptr) {
        const auto index = static_cast<std::size_t>(io_uring_cqe_get_data64(cqe));
        const int res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        --in_flight;
        const ReadRequest& r = requests[index];
        if (res == -EINTR || res == -EAGAIN) {
          resubmit(fd, r, index, path, in_flight);
        } else if (res < 0) {
          drain(in_flight);
          throw Error(path + ": read of " + std::to_string(r.length) + " bytes at offset " +
                      std::to_string(r.offset) + " failed: " + std::strerror(-res));
        } else {
          done_[index] += res;
          if (res > 0 && done_[index] < r.length && r.offset + done_[index] < file_size)
            resubmit(fd, r, index, path, in_flight);
        }
        cqe = nullptr;
        if (io_uring_peek_cqe(&ring_, &cqe) != 0) cqe = nullptr;
      }
    }
  }

 private:
  bool submit(int fd, const ReadRequest& r, std::size_t index) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return false;
    const std::int64_t done = done_[index];
    io_uring_prep_read(sqe, fd, r.dst + done, static_cast<unsigned>(r.length - done),
                       static_cast<std::uint64_t>(r.offset + done));
    io_uring_sqe_set_data64(sqe, index);
    return true;
  }
  void resubmit(int fd, const ReadRequest& r, std::size_t index, const std::string& path,
                std::size_t& in_flight) {
    if (!submit(fd, r, index)) {
      io_uring_submit(&ring_);
      if (!submit(fd, r, index)) fail(path, "io_uring_get_sqe", EBUSY);
    }
    ++in_flight;
  }
  // Waits for reads still in flight before an error leaves read(): their buffers belong to the caller.
  void drain(std::size_t in_flight) {
    io_uring_submit(&ring_);
    for (; in_flight > 0; --in_flight) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(&ring_, &cqe) != 0) return;
      io_uring_cqe_seen(&ring_, cqe);
    }
  }
  [[noreturn]] static void fail(const std::string& path, const char* what, int error) {
    throw Error(path + ": " + what + " failed: " + std::strerror(error));
  }

  int depth_;
  io_uring ring_{};
  bool ready_ = false;
  std::vector<std::int64_t> done_;
};

}  // namespace

std::unique_ptr<BlockReader::Engine> make_uring_engine(int depth, std::string* why_not) {
  auto engine = std::make_unique<UringEngine>(depth);
  const int rc = engine->init();
  if (rc < 0) {
    if (why_not) *why_not = std::string("io_uring_queue_init: ") + std::strerror(-rc);
    return nullptr;
  }
  engine->mark_ready();
  return engine;
}

#else

std::unique_ptr<BlockReader::Engine> make_uring_engine(int, std::string* why_not) {
  if (why_not) *why_not = "built without liburing";
  return nullptr;
}

#endif

bool io_uring_available(std::string* why_not) { return make_uring_engine(2, why_not) != nullptr; }

}  // namespace qk::io
