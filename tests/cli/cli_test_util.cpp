// Helpers shared by the CLI tests (see cli_test_util.hpp).
#include "cli_test_util.hpp"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace qk::cli_test {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

class Descriptor {
 public:
  explicit Descriptor(int fd = -1) : fd_(fd) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// A pseudo-terminal: the master end (read by the parent) and the open slave end (the child's stderr).
void open_terminal(Descriptor& master, Descriptor& slave) {
  const int m = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) fail("posix_openpt");
  Descriptor owned(m);
  if (::grantpt(m) != 0 || ::unlockpt(m) != 0) fail("grantpt");
  const char* name = ::ptsname(m);
  if (name == nullptr) fail("ptsname");
  const int s = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) fail(std::string("open ") + name);
  master.reset(owned.release());
  slave.reset(s);
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& cwd,
                          bool stderr_on_terminal) {
  if (argv.empty()) throw std::invalid_argument("run_process: no program");
  // Everything the child touches is prepared before fork: between fork and exec only async-signal-safe
  // calls are allowed (the test binary may have other threads).
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out_fds[2], err_fds[2];
  if (::pipe2(out_fds, O_CLOEXEC) != 0) fail("pipe2");
  Descriptor out_read(out_fds[0]), out_write(out_fds[1]);
  Descriptor err_read, err_write;
  if (stderr_on_terminal) {
    open_terminal(err_read, err_write);
  } else {
    if (::pipe2(err_fds, O_CLOEXEC) != 0) fail("pipe2");
    err_read.reset(err_fds[0]);
    err_write.reset(err_fds[1]);
  }
  Descriptor null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_in.get() < 0) fail("open /dev/null");

  const pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    // dup2 clears O_CLOEXEC on the copies, so exactly fds 0, 1 and 2 survive the exec.
    if (::chdir(cwd.c_str()) != 0 || ::dup2(null_in.get(), 0) < 0 || ::dup2(out_write.get(), 1) < 0 ||
        ::dup2(err_write.get(), 2) < 0) {
      ::_exit(126);
    }
    ::execv(args[0], args.data());
    static const char kMessage[] = "run_process: exec failed\n";
    [[maybe_unused]] const ssize_t ignored = ::write(2, kMessage, sizeof kMessage - 1);
    ::_exit(127);
  }
  out_write.reset();
  err_write.reset();
  null_in.reset();

  // Read both pipes as data arrives: reading one to the end first could deadlock on a full other pipe.
  ProcessResult result;
  pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_pipes = 2;
  char buffer[65536];
  while (open_pipes > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      // A terminal's master end reports EIO, not end of file, once the child's side is closed.
      if (n <= 0) {
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open_pipes;
        continue;
      }
      sinks[i]->append(buffer, static_cast<std::size_t>(n));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail("waitpid");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

ProcessResult run_qtool(const std::vector<std::string>& args, const std::string& cwd) {
  std::vector<std::string> argv{QK_QTOOL};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, cwd);
}

ProcessResult run_qtool_at_terminal(const std::vector<std::string>& args, const std::string& cwd) {
  std::vector<std::string> argv{QK_QTOOL};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, cwd, true);
}

std::string numpy_python() {
  if (const char* env = std::getenv("QK_PYTHON3"); env != nullptr && *env != '\0') return env;
  return QK_PYTHON3;
}

TempFolder::TempFolder(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp " + pattern);
  path_ = pattern;
}

TempFolder::~TempFolder() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::map<std::string, std::string> snapshot(const std::filesystem::path& root) {
  std::map<std::string, std::string> entries;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    const std::string name = std::filesystem::relative(entry.path(), root).string();
    if (entry.is_symlink()) {
      entries[name] = "-> " + std::filesystem::read_symlink(entry.path()).string();
    } else if (entry.is_directory()) {
      entries[name] = "<dir>";
    } else {
      entries[name] = read_file(entry.path());
    }
  }
  return entries;
}

std::vector<std::string> temp_files(const std::filesystem::path& root) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") && name.find(".tmp") != std::string::npos)
      found.push_back(entry.path().string());
  }
  return found;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string npy_dict(const std::string& descr, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
}

std::string npy_bytes(const std::string& dict, const std::string& data, int major) {
  const std::size_t len_width = major == 1 ? 2 : 4;
  const std::size_t prefix = 6 + 2 + len_width;
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (std::size_t i = 0; i < len_width; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

}  // namespace qk::cli_test
