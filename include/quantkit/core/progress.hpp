// The one progress callback of quantkit: long-running library calls report the fraction of their work
// done, 0..1, nondecreasing; an empty function means nobody is listening.
#pragma once

#include <functional>

namespace qk {

using ProgressFn = std::function<void(double)>;

// The callback for a part of the work that spans [from, to] of the whole: its 0..1 lands there. Empty
// when `whole` is.
inline ProgressFn progress_part(const ProgressFn& whole, double from, double to) {
  if (!whole) return {};
  return [whole, from, to](double fraction) { whole(from + (to - from) * fraction); };
}

}  // namespace qk
