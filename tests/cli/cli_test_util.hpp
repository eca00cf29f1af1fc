// Helpers shared by the CLI tests: qtool run as a real child process, a scratch folder per test,
// snapshots of a folder's contents, and .npy files made byte by byte.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace qk::cli_test {

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + the signal number when a signal ended the child
  std::string out;     // everything the child wrote on stdout
  std::string err;     // everything the child wrote on stderr
};

// Runs argv[0] (a path; PATH is not searched) with its arguments in folder cwd, stdin from /dev/null,
// and waits for it. No shell is involved: every argument reaches the child exactly as given.
// With stderr_on_terminal, the child's stderr is a pseudo-terminal (what a user at a terminal gives it;
// the terminal turns "\n" into "\r\n") and `err` holds what it wrote there; stdout stays a pipe.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& cwd,
                          bool stderr_on_terminal = false);

// The qtool under test (QK_QTOOL, the build's binary) with args, run in folder cwd.
ProcessResult run_qtool(const std::vector<std::string>& args, const std::string& cwd);
// The same with stderr on a pseudo-terminal, as a user at a terminal runs it.
ProcessResult run_qtool_at_terminal(const std::vector<std::string>& args, const std::string& cwd);

// The python3 that imports numpy: $QK_PYTHON3 when set, else the one CMake found; empty when none.
std::string numpy_python();

// A fresh folder under the system temp folder, removed with everything in it when destroyed.
class TempFolder {
 public:
  explicit TempFolder(const std::string& prefix = "qk-cli-test");
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  ~TempFolder();

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Every entry under root by relative path: a file's bytes, "<dir>" for a folder, "-> target" for a
// symbolic link. Two equal snapshots mean nothing was created, removed or changed.
std::map<std::string, std::string> snapshot(const std::filesystem::path& root);

// Names of leftover temporary files (".<name>.tmp*", what qk::io::AtomicFile creates) anywhere under root.
std::vector<std::string> temp_files(const std::filesystem::path& root);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& bytes);

// The raw bytes of values (little-endian host, as the .npy helpers below assume).
template <class T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 64), }", the dict numpy writes.
std::string npy_dict(const std::string& descr, const std::string& shape);

// A .npy made byte by byte: "\x93NUMPY", the version (major.0), the little-endian header length
// (2 bytes for version 1, 4 for 2 and 3), the dict padded with spaces and a final '\n' so that the
// data starts on a 64-byte boundary as numpy writes it, then data as given.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1);

}  // namespace qk::cli_test
