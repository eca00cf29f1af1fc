// The min/max observers' one piece of float arithmetic that must not be contracted: compiled here, with
// the library's -ffp-contract=off, rather than inline in the header under a user's flags.
#include "quantkit/observe/minmax.hpp"

namespace qk {

float moving_average_update(float m, float cur, float averaging_constant) {
  float d = cur - m;
  d = averaging_constant * d;
  return m + d;
}

}  // namespace qk
