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

}  // namespace qk
