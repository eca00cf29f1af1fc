// Linked into every test executable (tests/CMakeLists.txt): prints the run's random seed before the
// first test, so that any failure of a randomised test can be replayed with --gtest_random_seed=N (the
// seed is time-based when the flag is not given). Tests that draw from it use
// ::testing::UnitTest::GetInstance()->random_seed().
#include <gtest/gtest.h>

#include <cstdio>

namespace {

class SeedPrinter : public ::testing::Environment {
 public:
  void SetUp() override {
    const int seed = ::testing::UnitTest::GetInstance()->random_seed();
    std::printf("random seed %d (replay with --gtest_random_seed=%d)\n", seed, seed);
  }
};

// Registered during static initialisation; gtest owns the environment.
[[maybe_unused]] ::testing::Environment* const kSeedPrinter =
    ::testing::AddGlobalTestEnvironment(new SeedPrinter);

}  // namespace
