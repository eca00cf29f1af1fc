// kSanitized: whether this test binary is built with a sanitizer (ASan, TSan, UBSan). Tests that measure
// resident memory or rely on exact allocation behaviour skip those checks there: ASan's redzones and its
// quarantine of freed memory change both.
#pragma once

namespace qk::test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

}  // namespace qk::test
