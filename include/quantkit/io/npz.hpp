// .npz archives (what np.savez and np.savez_compressed write: a zip of .npy members, stored or
// deflated), read and written with libzip. Member names are given without the ".npy" suffix.
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "quantkit/io/array_sink.hpp"
#include "quantkit/io/npy.hpp"

namespace qk::io {

// Names of the arrays in an archive, in archive order.
std::vector<std::string> npz_names(const std::string& path);
// One member; throws naming the archive and the member when it is missing or corrupt.
NpyArray read_npz_member(const std::string& path, const std::string& name);
// Every member.
std::map<std::string, NpyArray> read_npz(const std::string& path);
// Every member of an archive held in memory (the fuzzer's entry point); name is used in messages.
std::map<std::string, NpyArray> read_npz_bytes(std::span<const std::byte> bytes, const std::string& name);

// Collects arrays, then writes the archive atomically (temporary file in the same folder, fsync,
// rename). Members are stored uncompressed unless compress is set (then deflate, as savez_compressed).
class NpzWriter : public ArraySink {
 public:
  explicit NpzWriter(bool compress = false) : compress_(compress) {}
  // Adds a whole encoded .npy (see encode_npy); the writer keeps the bytes.
  void add_encoded(const std::string& name, std::vector<std::byte> npy_bytes) override;
  void write(const std::string& path) const;

 private:
  bool compress_;
  std::vector<std::pair<std::string, std::vector<std::byte>>> members_;
};

}  // namespace qk::io
