// qk::Error: the one exception type of quantkit. Messages name the input (file, tensor, axis) and the
// problem.
#pragma once

#include <stdexcept>
#include <string>

namespace qk {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs f and returns its result; a qk::Error it throws is thrown again with "label: " in front, so that the
// message names the file, tensor or layer the failing step worked on.
template <class F>
auto with_error_label(const std::string& label, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(label + ": " + e.what());
  }
}

}  // namespace qk
