// Loads one golden case directory (tests/data/golden/<id>): case.json, input arrays, expected arrays,
// and compares results by each field's check (exact / tolerance / informational) as the golden README says.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quantkit/io/npy.hpp"

namespace qk::test {

class GoldenCase {
 public:
  explicit GoldenCase(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::ifstream in(dir_ / "case.json");
    json_ = nlohmann::json::parse(in);
  }
  const nlohmann::json& json() const { return json_; }
  const nlohmann::json& params() const { return json_.at("params"); }
  std::string op() const { return json_.at("op").get<std::string>(); }
  std::string conformance() const { return json_.at("conformance").get<std::string>(); }

  io::NpyArray input_array(const std::string& name) const {
    return io::read_npy((dir_ / json_.at("inputs").at(name).at("file").get<std::string>()).string());
  }
  template <class T>
  std::vector<T> input(const std::string& name) const {
    return input_array(name).to_vector<T>();
  }
  io::NpyArray expected_array(const std::string& name) const {
    return io::read_npy((dir_ / json_.at("expected").at(name).at("file").get<std::string>()).string());
  }
  bool has_input(const std::string& name) const { return json_.at("inputs").contains(name); }
  bool has_expected(const std::string& name) const { return json_.at("expected").contains(name); }

  // Compares got against expected field `name` by its check; informational fields are not compared (see
  // expect_as for what a runner can still check in them).
  template <class T>
  void expect(const std::string& name, const std::vector<T>& got) const {
    const std::string check = json_.at("expected").at(name).at("check").get<std::string>();
    if (check == "informational") return;
    compare(name, got, check);
  }

  // Compares got against field `name` under `check` ("exact": every element bit for bit, or "tolerance":
  // the field's own tolerance), whatever the case file says: for a tolerance field that the library
  // reproduces exactly, and for informational fields that follow a documented rule.
  template <class T>
  void expect_as(const std::string& name, const std::vector<T>& got, const std::string& check) const {
    compare(name, got, check);
  }

  // A check that is not a field comparison (the refusal of a bad input, a bound against the reference's
  // result): counted with the fields.
  void count_check() const { ++compared_; }
  // How many checks were made: a case whose runner checks nothing is a failure of the suite.
  int checks() const { return compared_; }

 private:
  template <class T>
  void compare(const std::string& name, const std::vector<T>& got, const std::string& check) const {
    ++compared_;
    const auto& field = json_.at("expected").at(name);
    const auto want = io::read_npy((dir_ / field.at("file").get<std::string>()).string()).to_vector<T>();
    ASSERT_EQ(got.size(), want.size()) << name;
    double abs_tol = 0, rel_tol = 0;
    if (check == "tolerance") {
      abs_tol = field.at("tolerance").at("abs").get<double>();
      rel_tol = field.at("tolerance").at("rel").get<double>();
    } else {
      ASSERT_EQ(check, "exact") << "unknown check for " << name;
    }
    std::size_t failures = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      bool ok;
      if constexpr (std::is_floating_point_v<T>) {
        // Exact means the same bits (so -0 is not 0, and NaN equals NaN of the same payload).
        ok = check == "exact" ? std::memcmp(&got[i], &want[i], sizeof(T)) == 0
                              : std::abs(static_cast<double>(got[i]) - want[i]) <=
                                    abs_tol + rel_tol * std::abs(static_cast<double>(want[i]));
      } else {
        ok = got[i] == want[i];
      }
      if (!ok && failures++ < 5) {
        ADD_FAILURE() << name << "[" << i << "]: got " << +got[i] << ", want " << +want[i] << " (" << check
                      << ")";
      }
    }
    EXPECT_EQ(failures, 0u) << name << ": " << failures << " of " << got.size() << " elements differ";
  }

  mutable int compared_ = 0;
  std::filesystem::path dir_;
  nlohmann::json json_;
};

inline std::filesystem::path golden_dir() { return std::filesystem::path(QK_TEST_DATA_DIR) / "golden"; }

inline std::vector<std::string> golden_case_ids() {
  std::vector<std::string> ids;
  for (const auto& entry : std::filesystem::directory_iterator(golden_dir())) {
    if (entry.is_directory() && std::filesystem::exists(entry.path() / "case.json"))
      ids.push_back(entry.path().filename().string());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace qk::test
