// What a file is, from its first bytes and its format field: so that a reader handed the wrong kind of
// quantkit file (an embedding table where a quantized tensor is expected, a plan or a calibration file
// where an array is) says what the file is instead of "member 'q' is missing" or "bad magic".
#pragma once

#include <string>

namespace qk {

enum class FileKind {
  kNpy,              // a .npy array
  kQuantizedTensor,  // an .npz from quantize_file (member q, meta format quantkit.qtensor/N)
  kEmbeddingTable,   // an .npz from save_embedding_table (meta format quantkit.embedding)
  kQuantizedCheckpoint,  // an .npz from quantize_checkpoint (member quantkit_checkpoint)
  kNpzArchive,       // any other .npz (a checkpoint, numpy.savez)
  kCalibration,      // calib.json (format quantkit-calibration)
  kMixedPlan,        // plan.json (format quantkit.mixed-plan/1)
  kMixedOutput,      // the manifest.json a plan writes beside its layers (quantkit.mixed-output/1)
  kOther,            // anything else, unreadable or missing
};

// Reads as little of the file as it needs; never throws (a missing or unreadable file is kOther).
FileKind file_kind(const std::string& path);
const char* describe(FileKind kind);

// Throws a FileError naming the file and what it is when `path` is another kind of quantkit file than
// `wanted` (the remedy says what the file is for: FileRemedy::kUseAsEmbeddingTable and so on); does nothing
// when it is `wanted`, or when its kind cannot be told (the reader then reports the problem in detail).
void expect_file_kind(const std::string& path, FileKind wanted);

}  // namespace qk
