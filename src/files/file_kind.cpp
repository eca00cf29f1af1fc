// Telling quantkit's file kinds apart (files/file_kind.hpp).
#include "quantkit/files/file_kind.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "quantkit/files/checkpoint_file.hpp"
#include "quantkit/files/embedding_file.hpp"
#include "quantkit/files/file_error.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/io/npz.hpp"

namespace qk {

namespace {

FileKind json_kind(const std::string& path) {
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string()) return FileKind::kOther;
  const std::string format = j["format"].get<std::string>();
  if (format == "quantkit-calibration") return FileKind::kCalibration;
  if (format == kMixedPlanFormat) return FileKind::kMixedPlan;
  if (format.rfind("quantkit.mixed-output/", 0) == 0) return FileKind::kMixedOutput;
  return FileKind::kOther;
}

FileKind npz_kind(const std::string& path) {
  try {
    const std::vector<std::string> names = io::npz_names(path);
    const auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    if (has(kCheckpointIndexMember)) return FileKind::kQuantizedCheckpoint;
    if (has("meta")) {
      const std::string meta = io::read_npz_member(path, "meta").as_string();
      const nlohmann::json j = nlohmann::json::parse(meta, nullptr, false);
      const std::string format = j.is_object() && j.contains("format") && j["format"].is_string()
                                     ? j["format"].get<std::string>()
                                     : std::string();
      if (format == kEmbeddingTableFormat) return FileKind::kEmbeddingTable;
      if (format.rfind("quantkit.qtensor/", 0) == 0 && has("q")) return FileKind::kQuantizedTensor;
    }
    return FileKind::kNpzArchive;
  } catch (const std::exception&) {
    return FileKind::kOther;
  }
}

}  // namespace

FileKind file_kind(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[6] = {};
  if (!in.read(head, sizeof head)) return FileKind::kOther;
  if (head[0] == '\x93' && std::string(head + 1, 5) == "NUMPY") return FileKind::kNpy;
  if (head[0] == 'P' && head[1] == 'K') return npz_kind(path);
  for (const char c : head)
    if (c == '{') return json_kind(path);
  return FileKind::kOther;
}

const char* describe(FileKind kind) {
  switch (kind) {
    case FileKind::kNpy:
      return "a .npy array";
    case FileKind::kQuantizedTensor:
      return "a quantized tensor file";
    case FileKind::kEmbeddingTable:
      return "an embedding table";
    case FileKind::kQuantizedCheckpoint:
      return "a quantized checkpoint (one quantized tensor per member)";
    case FileKind::kNpzArchive:
      return "an .npz archive of arrays";
    case FileKind::kCalibration:
      return "a calibration file (activation and weight parameters)";
    case FileKind::kMixedPlan:
      return "a mixed-precision plan";
    case FileKind::kMixedOutput:
      return "the manifest of a mixed-precision plan's output";
    case FileKind::kOther:
      break;
  }
  return "not a file quantkit knows";
}

void expect_file_kind(const std::string& path, FileKind wanted) {
  const FileKind kind = file_kind(path);
  if (kind == wanted || kind == FileKind::kOther || kind == FileKind::kNpzArchive) return;
  FileRemedy remedy = FileRemedy::kUseAsArray;
  switch (kind) {
    case FileKind::kEmbeddingTable:
      remedy = FileRemedy::kUseAsEmbeddingTable;
      break;
    case FileKind::kCalibration:
      remedy = FileRemedy::kUseAsCalibration;
      break;
    case FileKind::kMixedPlan:
    case FileKind::kMixedOutput:
      remedy = FileRemedy::kUseAsPlan;
      break;
    case FileKind::kQuantizedTensor:
    case FileKind::kQuantizedCheckpoint:
      remedy = FileRemedy::kUseAsQuantizedTensor;
      break;
    default:
      break;
  }
  throw FileError(path + " is " + describe(kind) + ", not " + describe(wanted), remedy);
}

}  // namespace qk
