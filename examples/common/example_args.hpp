// The examples' command lines: flags read in order, values checked, errors that name the flag.
#pragma once

#include <cstdint>
#include <quantkit/core/error.hpp>
#include <string>

namespace digits {

class ArgReader {
 public:
  ArgReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // The next flag, or false at the end.
  bool next(std::string& flag) {
    if (++i_ >= argc_) return false;
    flag_ = flag = argv_[i_];
    return true;
  }
  std::string value() {
    if (i_ + 1 >= argc_) throw qk::Error("missing value after " + flag_);
    return argv_[++i_];
  }
  // The flags every example takes (--data DIR, --seed S, --json, --check), for an options struct with
  // those members; false when `flag` is another one.
  template <class Options>
  bool read_common(const std::string& flag, Options& o) {
    if (flag == "--data") {
      o.data = value();
    } else if (flag == "--seed") {
      o.seed = static_cast<std::uint64_t>(count(0));
    } else if (flag == "--json") {
      o.json = true;
    } else if (flag == "--check") {
      o.check = true;
    } else {
      return false;
    }
    return true;
  }

  // An integer value in [at_least, 100000].
  int count(int at_least) {
    const std::string v = value();
    std::size_t used = 0;
    long long parsed = -1;
    try {
      parsed = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || parsed < at_least || parsed > 100000)
      throw qk::Error(flag_ + " needs an integer from " + std::to_string(at_least) + " to 100000, got '" + v +
                      "'");
    return static_cast<int>(parsed);
  }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string flag_;
};

}  // namespace digits
