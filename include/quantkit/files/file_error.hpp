// An error about an input that the caller can remedy by asking differently. The message names the file and
// the problem in the library's words; `remedy` says what to change, so a front end can word the hint in its
// own terms (qtool names its flag) without parsing the message.
#pragma once

#include <string>

#include "quantkit/core/error.hpp"

namespace qk {

enum class FileRemedy {
  kSaturateNonFinite,   // the input holds NaN/Inf: quantize with NonFinitePolicy::kSaturate
  kGiveActivations,     // the method needs calibration activation files
  kSaveEmbeddingTable,  // the .npz is not an embedding table: write one with save_embedding_table
  // The file is another kind of quantkit file than the one asked for (files/file_kind.hpp); use it as:
  kUseAsEmbeddingTable,
  kUseAsCalibration,
  kUseAsPlan,            // a mixed-precision plan, or the manifest of its output
  kUseAsQuantizedTensor,
  kUseAsArray,
};

class FileError : public Error {
 public:
  FileError(const std::string& message, FileRemedy remedy) : Error(message), remedy_(remedy) {}
  FileRemedy remedy() const { return remedy_; }

 private:
  FileRemedy remedy_;
};

}  // namespace qk
