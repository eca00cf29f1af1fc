// Writes that fail or are killed halfway leave the previous output whole (README: "never leaves a
// half-written output file, never loses the user's data"). Each case runs the write in a forked child:
// - a write that fails: RLIMIT_FSIZE makes the file system "full" after a few KiB (EFBIG, as ENOSPC would),
//   RLIMIT_NOFILE leaves no descriptor for the temporary file (the same path as an unwritable folder, which
//   root cannot be shown since root ignores permissions); the child reports the message through a pipe;
// - a write that is killed: SIGKILL at spread-out moments while the child rewrites a 24 MiB file again and
//   again; the target must then hold either the old bytes or the new ones, whole. A killed process cannot
//   remove its temporary file, so a ".<name>.tmpXXXXXX" may remain beside the target: that is the one
//   stray entry allowed, and a later write does not trip over it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "sanitized_build.hpp"

namespace qk::io {
namespace {

using test::ScratchDir;
using testing::HasSubstr;
using testing::StartsWith;

// Runs `write` in a child after `limit` (the child's own resource limits); returns the qk::Error message
// it threw, or a text starting with "no error" / "other exception".
std::string failure_in_child(const std::function<void()>& limit, const std::function<void()>& write) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    std::string message;
    try {
      limit();
      write();
      message = "no error";
    } catch (const Error& e) {
      message = e.what();
    } catch (const std::exception& e) {
      message = std::string("other exception: ") + e.what();
    }
    (void)!::write(fds[1], message.data(), message.size());
    ::_exit(0);  // no atexit handlers, no gtest teardown in the child
  }
  ::close(fds[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    message.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child died: status " << status;
  return message;
}

std::vector<float> ramp(std::size_t n, float step) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * step;
  return v;
}

// The file system fills up after 4 KiB: SIGXFSZ ignored, so write(2) fails with EFBIG.
void small_file_size_limit() {
  ::signal(SIGXFSZ, SIG_IGN);
  const rlimit lim{4096, 4096};
  if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) throw std::runtime_error("setrlimit failed");
}

// No descriptor left: the limit is the lowest free descriptor, so the next open (the temporary file)
// fails with EMFILE while the descriptors already open (the pipe, the sanitizers' own) stay usable.
void no_free_descriptor() {
  const int lowest_free = ::dup(0);
  if (lowest_free < 0) throw std::runtime_error("dup failed");
  ::close(lowest_free);
  const rlimit lim{static_cast<rlim_t>(lowest_free), static_cast<rlim_t>(lowest_free)};
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) throw std::runtime_error("setrlimit failed");
}

TEST(InterruptedWrite, FullFileSystemLeavesTheExistingNpyAndNoTemporary) {
  const ScratchDir dir;
  const std::string path = dir.file("w.npy");
  test::write_bytes(path, test::to_bytes("old contents"));
  const std::vector<float> big = ramp(100000, 0.5f);  // 400 KB: far past the limit
  const std::string message = failure_in_child(small_file_size_limit, [&] {
    write_npy(path, DType::kFloat32, {100000}, std::as_bytes(std::span(big)));
  });
  EXPECT_THAT(message, AllOf(StartsWith(path + ": "), HasSubstr("write failed"), HasSubstr("too large")));
  EXPECT_EQ(test::read_bytes(path), test::to_bytes("old contents"));
  EXPECT_EQ(dir.entries(), std::set<std::string>{"w.npy"});
}

TEST(InterruptedWrite, FullFileSystemLeavesTheExistingNpzAndNoTemporary) {
  const ScratchDir dir;
  const std::string path = dir.file("w.npz");
  test::write_bytes(path, test::to_bytes("old archive"));
  const std::vector<float> big = ramp(100000, 0.25f);
  const std::string message = failure_in_child(small_file_size_limit, [&] {
    NpzWriter writer;
    writer.add<float>("big", {100000}, big);
    writer.write(path);
  });
  EXPECT_THAT(message, StartsWith(path + ": "));
  EXPECT_THAT(message, testing::Not(StartsWith("no error")));
  EXPECT_EQ(test::read_bytes(path), test::to_bytes("old archive"));
  EXPECT_EQ(dir.entries(), std::set<std::string>{"w.npz"});
}

using qk::test::kSanitized;

TEST(InterruptedWrite, NoTemporaryFilePossibleLeavesTheExistingFile) {
  // What an unwritable folder does to a non-root user, shown as root too: creating the temporary fails.
  // The release and scalar runs check it; a sanitizer runtime itself needs descriptors it cannot get.
  if (kSanitized) GTEST_SKIP() << "no free descriptor also starves the sanitizer runtime";
  const ScratchDir dir;
  const std::string path = dir.file("w.npy");
  test::write_bytes(path, test::to_bytes("old contents"));
  const std::vector<float> three = {1, 2, 3};
  const std::string message = failure_in_child(
      no_free_descriptor, [&] { write_npy(path, DType::kFloat32, {3}, std::as_bytes(std::span(three))); });
  EXPECT_THAT(message, AllOf(StartsWith(path + ": "), HasSubstr("cannot create a temporary file")));
  EXPECT_EQ(test::read_bytes(path), test::to_bytes("old contents"));
  EXPECT_EQ(dir.entries(), std::set<std::string>{"w.npy"});
}

// The killed-writer check for one writer: `write_new` rewrites the target with the new contents forever.
void expect_kills_leave_a_whole_file(const ScratchDir& dir, const std::string& name,
                                     const std::vector<std::byte>& old_bytes,
                                     const std::function<void()>& write_new) {
  const std::string path = dir.file(name);
  // One whole write first: the new contents as a write makes them, and how long a write takes here. The
  // kill delays are fractions of that time, so they land before, inside (data, fsync, rename) and between
  // writes on a fast machine and on a slow one alike (fixed delays of up to 60 ms all fell before the
  // first write on a machine where preparing the 24 MiB took 70 ms).
  const auto started = std::chrono::steady_clock::now();
  write_new();
  const double whole_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count();
  const std::vector<std::byte> new_bytes = test::read_bytes(path);
  int killed_mid_write = 0;
  // Every fraction once; then, until two kills have landed inside a write (the temporary file present),
  // rounds that wait for the writer's temporary file to appear and kill a little later: on a loaded
  // machine (ctest -j2 beside the multi-gigabyte tests) the child may spend most of a round preparing,
  // and fixed schedules caught only one write in progress (seen twice on a 2-core CI machine).
  const std::vector<double> fractions = {0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0, 1.5};
  constexpr std::size_t kMaxRounds = 48;
  for (std::size_t round = 0; round < kMaxRounds; ++round) {
    if (round >= fractions.size() && killed_mid_write >= 2) break;
    const double fraction = round < fractions.size() ? fractions[round]
                                                     : 0.1 + 0.9 * static_cast<double>((round * 7) % 16) /
                                                                 16.0;  // spread over a write
    const auto delay = static_cast<std::int64_t>(fraction * whole_us);
    SCOPED_TRACE("kill after " + std::to_string(delay) + " us");
    test::write_bytes(path, old_bytes);
    for (const std::string& entry : dir.entries())
      if (entry != name) std::filesystem::remove(dir.path() / entry);  // the last round's stray temporary
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        for (;;) write_new();
      } catch (...) {
      }
      ::_exit(1);
    }
    const auto temporary_exists = [&] {
      for (const std::string& entry : dir.entries())
        if (entry != name) return true;
      return false;
    };
    if (round >= fractions.size()) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!temporary_exists() && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      std::this_thread::sleep_for(std::chrono::microseconds(delay / 10));  // somewhere inside the write
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(delay));
    }
    bool temporary_present = false;
    for (const std::string& entry : dir.entries()) temporary_present |= entry != name;
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer stopped by itself";
    if (temporary_present) ++killed_mid_write;
    const std::vector<std::byte> now = test::read_bytes(path);
    if (now != old_bytes) {
      EXPECT_EQ(now.size(), new_bytes.size()) << name << " is neither the old file nor the new one";
      EXPECT_TRUE(now == new_bytes) << name << " is neither the old file nor the new one";
    }
    for (const std::string& entry : dir.entries()) {
      if (entry == name) continue;
      EXPECT_THAT(entry, StartsWith("." + name + ".tmp")) << "an unexpected file beside " << name;
    }
  }
  // The schedule must actually hit writes in progress, or the test proves nothing.
  EXPECT_GE(killed_mid_write, 2) << "too few kills landed inside a write";
}

TEST(InterruptedWrite, KilledNpyWriterLeavesTheOldOrTheNewFileWhole) {
  const ScratchDir dir;
  const std::vector<float> values = ramp(6 << 20, 1.0f / 1024);  // 24 MiB
  expect_kills_leave_a_whole_file(dir, "w.npy", test::to_bytes("old contents, not an array"), [&] {
    write_npy(dir.file("w.npy"), DType::kFloat32, {6 << 20}, std::as_bytes(std::span(values)));
  });
}

TEST(InterruptedWrite, KilledNpzWriterLeavesTheOldOrTheNewFileWhole) {
  const ScratchDir dir;
  const std::vector<float> values = ramp(6 << 20, 1.0f / 2048);
  expect_kills_leave_a_whole_file(dir, "w.npz", test::to_bytes("old archive"), [&] {
    NpzWriter writer;
    writer.add<float>("w", {6 << 20}, values);
    writer.write(dir.file("w.npz"));
  });
}

}  // namespace
}  // namespace qk::io
