// Internal to the library: the one JSON codec of a QuantSpec's fields, shared by the quantized-file meta
// (io/qfile.hpp) and calib.json (files/calibration_file.hpp), so that both files spell a spec the same way
// and read it with the same checks. Each format adds its own fields (bits, requested ranges) around it.
#pragma once

#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/core/spec.hpp"

namespace qk::io::detail {

// A JSON integer field, range-checked: floats, booleans and out-of-range values are errors that start
// with `where` and name the field as "<what> field '<key>'".
template <class Int>
Int integer_field(const nlohmann::json& j, const char* key, const std::string& where, const char* what) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number_integer()) throw Error(where + what + " field '" + key + "' must be an integer");
  const bool fits =
      v.is_number_unsigned()
          ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<Int>::max())
          : v.get<std::int64_t>() >= static_cast<std::int64_t>(std::numeric_limits<Int>::min()) &&
                v.get<std::int64_t>() <= static_cast<std::int64_t>(std::numeric_limits<Int>::max());
  if (!fits) throw Error(where + what + " field '" + key + "' is out of range");
  return static_cast<Int>(v.get<std::int64_t>());
}

// Writes signed, scheme, granularity, axis (per channel, else null), group_size (per group, else null),
// reduce_range, and quant_min / quant_max from `range` (the effective range of the codes).
void write_spec_fields(nlohmann::json& j, const QuantSpec& spec, QRange range);

// Reads signed, scheme, granularity and its axis or group size into spec; bits, ranges and reduce_range
// follow each format's own rules. Errors start with `where` (e.g. "q.npz: ") and say "in <what>".
void read_spec_fields(const nlohmann::json& j, QuantSpec& spec, const std::string& where, const char* what,
                      bool name_unknown_values_in_what = true);

}  // namespace qk::io::detail
