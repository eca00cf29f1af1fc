// The one progress callback of quantkit: long-running library calls report the fraction of their work
// done, 0..1, nondecreasing; an empty function means nobody is listening.
#pragma once

#include <functional>

namespace qk {

using ProgressFn = std::function<void(double)>;

}  // namespace qk
