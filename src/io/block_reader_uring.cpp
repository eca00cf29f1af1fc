// The io_uring engine of BlockReader: up to `depth` reads submitted at once, completions reaped as they
// come, short reads resubmitted for their remainder. Built only with liburing (QK_HAVE_LIBURING); without
// it make_uring_engine says so and the pread pool runs.
//
// An error never leaves a read in flight: the kernel would go on writing into the caller's buffer after
// read() has thrown. Before throwing, every submitted read is waited for; if even that fails the ring is
// marked broken and refuses further reads.
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

// One SQE reads at most this much (its length is 32-bit); longer requests take several rounds.
constexpr std::int64_t kMaxRead = std::int64_t{1} << 30;

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
    if (broken_) throw Error(path + ": an earlier read error left this reader unusable");
    done_.assign(requests.size(), 0);
    in_flight_ = 0;
    pending_ = 0;
    std::size_t next = 0;
    while (next < requests.size() || in_flight_ > 0) {
      while (next < requests.size() && in_flight_ < static_cast<std::size_t>(depth_) &&
             prepare(fd, requests[next], next))
        ++next;
      submit(path);
      io_uring_cqe* cqe = nullptr;
      wait(&cqe, path);
      // Reap everything complete, not just one.
      while (cqe != nullptr) {
        const auto index = reinterpret_cast<std::uintptr_t>(io_uring_cqe_get_data(cqe));
        const int res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        --in_flight_;
        const ReadRequest& r = requests[index];
        if (res == -EINTR || res == -EAGAIN) {
          retry(fd, r, index, path);
        } else if (res < 0) {
          fail_after_drain(path + ": read of " + std::to_string(r.length) + " bytes at offset " +
                           std::to_string(r.offset) + " failed: " + std::strerror(-res));
        } else {
          done_[index] += res;
          const std::int64_t at = r.offset + done_[index];
          if (done_[index] < r.length && at < file_size) {
            if (res == 0)
              fail_after_drain(path + ": the file ended at byte " + std::to_string(at) + ", before its " +
                               std::to_string(file_size) + " bytes when opened (truncated while reading?)");
            retry(fd, r, index, path);
          }
        }
        cqe = nullptr;
        if (io_uring_peek_cqe(&ring_, &cqe) != 0) cqe = nullptr;
      }
    }
  }

 private:
  bool prepare(int fd, const ReadRequest& r, std::size_t index) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return false;
    const std::int64_t done = done_[index];
    const std::int64_t length = std::min(r.length - done, kMaxRead);
    io_uring_prep_read(sqe, fd, r.dst + done, static_cast<unsigned>(length),
                       static_cast<std::uint64_t>(r.offset + done));
    io_uring_sqe_set_data(sqe, reinterpret_cast<void*>(static_cast<std::uintptr_t>(index)));
    ++pending_;
    ++in_flight_;
    return true;
  }
  void retry(int fd, const ReadRequest& r, std::size_t index, const std::string& path) {
    if (prepare(fd, r, index)) return;
    submit(path);  // the queue was full: hand it to the kernel, then there is room
    if (!prepare(fd, r, index)) fail_after_drain(path + ": io_uring has no free submission entry");
  }
  void submit(const std::string& path) {
    while (pending_ > 0) {
      const int submitted = io_uring_submit(&ring_);
      if (submitted == -EINTR || submitted == -EAGAIN) continue;
      if (submitted < 0) {
        // The prepared entries never reached the kernel: they are not in flight.
        in_flight_ -= pending_;
        pending_ = 0;
        fail_after_drain(path + ": io_uring_submit failed: " + std::strerror(-submitted));
      }
      pending_ -= static_cast<std::size_t>(submitted);
    }
  }
  void wait(io_uring_cqe** cqe, const std::string& path) {
    for (;;) {
      const int rc = io_uring_wait_cqe(&ring_, cqe);
      if (rc == 0) return;
      if (rc != -EINTR && rc != -EAGAIN)
        fail_after_drain(path + ": io_uring_wait_cqe failed: " + std::strerror(-rc));
    }
  }
  // Waits for every read still in flight (their buffers belong to the caller), then throws message.
  [[noreturn]] void fail_after_drain(const std::string& message) {
    while (in_flight_ > 0) {
      if (pending_ > 0) {
        const int submitted = io_uring_submit(&ring_);
        if (submitted < 0 && submitted != -EINTR && submitted != -EAGAIN) break;
        if (submitted > 0) pending_ -= static_cast<std::size_t>(submitted);
      }
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR || rc == -EAGAIN) continue;
      if (rc != 0) break;
      io_uring_cqe_seen(&ring_, cqe);
      --in_flight_;
    }
    if (in_flight_ > 0) broken_ = true;  // reads may still land: never touch this ring again
    throw Error(message);
  }

  int depth_;
  io_uring ring_{};
  bool ready_ = false;
  bool broken_ = false;
  std::size_t in_flight_ = 0;  // submitted or prepared, not yet completed
  std::size_t pending_ = 0;    // prepared, not yet submitted
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
