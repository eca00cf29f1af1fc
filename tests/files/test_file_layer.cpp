// The file layer's own contracts: errors a caller can remedy carry a FileRemedy and name the file, never a
// command-line flag; a .npy header is read without its data; progress is reported as a fraction; and the
// in-memory pieces the file functions delegate to (held-out validation, weight specs) agree with them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "quantkit/calib/calibration.hpp"
#include "quantkit/files/calibration_file.hpp"
#include "quantkit/files/embedding_file.hpp"
#include "quantkit/files/file_error.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/files/weight_method_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/ptq/weight_spec.hpp"

namespace qk {
namespace {

using io::test::normal_values;
using io::test::ScratchDir;

// Runs f, which must throw a FileError with `remedy`; returns its message.
template <class F>
std::string file_error_of(F&& f, FileRemedy remedy) {
  try {
    f();
  } catch (const FileError& e) {
    EXPECT_EQ(e.remedy(), remedy) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a FileError: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error";
  return {};
}

// The library's words only: no option of any front end, no program name.
void expect_no_cli_words(const std::string& message) {
  EXPECT_EQ(message.find("--"), std::string::npos) << message;
  EXPECT_EQ(message.find("qtool"), std::string::npos) << message;
}

TEST(FileErrors, NonFiniteInputNamesTheFileAndAsksForSaturation) {
  ScratchDir dir;
  std::vector<float> v = normal_values(12, 1, 0.0f, 1.0f);
  v[5] = std::numeric_limits<float>::quiet_NaN();
  io::write_npy<float>(dir.file("nan.npy"), TensorView<const float>(v.data(), {3, 4}));
  FileQuantOptions options;
  options.spec = default_weight_spec(2);
  const std::string message =
      file_error_of([&] { quantize_file(dir.file("nan.npy"), dir.file("q.npz"), options); },
                    FileRemedy::kSaturateNonFinite);
  EXPECT_NE(message.find(dir.file("nan.npy")), std::string::npos) << message;
  EXPECT_NE(message.find("first at index [1, 1]"), std::string::npos) << message;
  expect_no_cli_words(message);
  options.nonfinite = NonFinitePolicy::kSaturate;
  EXPECT_EQ(quantize_file(dir.file("nan.npy"), dir.file("q.npz"), options).nonfinite, 1);
}

TEST(FileErrors, AnArchiveThatIsNoEmbeddingTableAsksForOneToBeSaved) {
  ScratchDir dir;
  io::NpzWriter writer;
  const std::vector<float> v = {1, 2, 3};
  writer.add<float>("a", {3}, std::span<const float>(v));
  writer.write(dir.file("other.npz"));
  const std::string message =
      file_error_of([&] { open_embedding_table(dir.file("other.npz")); }, FileRemedy::kSaveEmbeddingTable);
  EXPECT_NE(message.find(dir.file("other.npz") + ": not an embedding table"), std::string::npos) << message;
  expect_no_cli_words(message);
}

TEST(FileErrors, AMethodWithoutActivationsAsksForThem) {
  ScratchDir dir;
  const std::vector<float> w = normal_values(8 * 16, 2, 0.0f, 1.0f);
  io::write_npy<float>(dir.file("w.npy"), TensorView<const float>(w.data(), {8, 16}));
  const std::string message = file_error_of(
      [&] { quantize_file_with_method(dir.file("w.npy"), {}, dir.file("q.npz"), WeightMethod::kAwq, {}); },
      FileRemedy::kGiveActivations);
  expect_no_cli_words(message);
}

// A method's progress covers the whole run: the activations read, then RTN's reference error and the
// method's own compute, nondecreasing, ending at 1.
TEST(MethodFiles, ProgressCoversReadingAndTheCompute) {
  ScratchDir dir;
  const std::int64_t out = 32, in = 64, rows = 128;
  const std::vector<float> w = normal_values(out * in, 5, 0.0f, 1.0f);
  const std::vector<float> x = normal_values(rows * in, 6, 0.0f, 1.0f);
  io::write_npy<float>(dir.file("w.npy"), TensorView<const float>(w.data(), {out, in}));
  io::write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), {rows, in}));
  WeightQuantOptions o;
  o.group_size = 16;
  o.block_size = 16;
  for (const WeightMethod m : {WeightMethod::kGptq, WeightMethod::kAwq}) {
    std::vector<double> seen;
    quantize_file_with_method(dir.file("w.npy"), {dir.file("x.npy")}, dir.file("q.npz"), m, o,
                              [&](double f) { seen.push_back(f); });
    ASSERT_GE(seen.size(), 4u) << to_string(m);  // one batch read, then RTN's error and the method's steps
    for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]) << to_string(m) << " " << i;
    EXPECT_GT(seen.front(), 0.0) << to_string(m);
    EXPECT_LT(seen.front(), 0.5) << to_string(m);  // reading is the first part, not the whole
    EXPECT_EQ(seen.back(), 1.0) << to_string(m);
  }
}

TEST(NpyHeader, IsTheHeaderTheFullReaderSees) {
  ScratchDir dir;
  const std::vector<float> v = normal_values(2 * 3 * 5, 3, 0.0f, 1.0f);
  io::write_npy<float>(dir.file("x.npy"), TensorView<const float>(v.data(), {2, 3, 5}));
  const io::NpyHeader header = read_npy_header(dir.file("x.npy"));
  const io::NpyArray full = io::read_npy(dir.file("x.npy"));
  EXPECT_EQ(header.shape, (Shape{2, 3, 5}));
  EXPECT_EQ(header.dtype, io::DType::kFloat32);
  EXPECT_EQ(header.data_offset, full.header().data_offset);
  EXPECT_EQ(header.data_bytes, full.header().data_bytes);
  EXPECT_THROW(read_npy_header(dir.file("missing.npy")), Error);
}

TEST(Calibration, ProgressIsTheFractionOfInputsRead) {
  ScratchDir dir;
  std::vector<std::string> inputs;
  for (int i = 0; i < 4; ++i) {
    const std::vector<float> v = normal_values(16, 10 + i, 0.0f, 1.0f);
    inputs.push_back(dir.file("x" + std::to_string(i) + ".npy"));
    io::write_npy<float>(inputs.back(), TensorView<const float>(v.data(), {16}));
  }
  std::vector<double> seen;
  calibrate_files(inputs, ObserverConfig{}, [&](double f) { seen.push_back(f); });
  EXPECT_EQ(seen, (std::vector<double>{0.25, 0.5, 0.75, 1.0}));
}

// validate_calibration over files is the in-memory HeldOutValidation fed the same arrays.
TEST(Calibration, FileValidationIsTheInMemoryValidation) {
  ScratchDir dir;
  const std::vector<float> calib = normal_values(256, 20, 0.0f, 1.0f);
  const std::vector<float> held = normal_values(256, 21, 0.0f, 3.0f);  // three times wider: flagged
  io::write_npy<float>(dir.file("x.npy"), TensorView<const float>(calib.data(), {256}));
  const ObserverConfig config;
  const ObserverMap observers = calibrate_files({dir.file("x.npy")}, config);
  write_calibration(dir.file("calib.json"), observers, calibration_results(observers));
  std::filesystem::create_directories(dir.path() / "held");
  io::write_npy<float>(dir.file("held/x.npy"), TensorView<const float>(held.data(), {256}));
  io::write_npy<float>(dir.file("held/y.npy"), TensorView<const float>(held.data(), {256}));
  const ValidationReport from_files =
      validate_calibration(dir.file("calib.json"), {dir.file("held/x.npy"), dir.file("held/y.npy")});

  std::map<std::string, QuantParams> params{
      {"x", read_calibrated_params(dir.file("calib.json"), "x").params}};
  HeldOutValidation in_memory(read_calibration(dir.file("calib.json")), params);
  in_memory.observe<float>("x", TensorView<const float>(held.data(), {256}));
  in_memory.observe<float>("y", TensorView<const float>(held.data(), {256}));
  const ValidationReport report = in_memory.report();

  ASSERT_EQ(report.tensors.size(), 2u);
  ASSERT_EQ(from_files.tensors.size(), 2u);
  EXPECT_TRUE(report.tensors[0].flagged);
  EXPECT_FALSE(report.tensors[1].calibrated);  // y: not in the calibration
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(report.tensors[i].name, from_files.tensors[i].name);
    EXPECT_EQ(report.tensors[i].range_mismatch, from_files.tensors[i].range_mismatch);
    EXPECT_EQ(report.tensors[i].clipped_fraction, from_files.tensors[i].clipped_fraction);
    EXPECT_EQ(report.tensors[i].sqnr_db, from_files.tensors[i].sqnr_db);
    EXPECT_EQ(report.tensors[i].flagged, from_files.tensors[i].flagged);
  }
  EXPECT_THROW(HeldOutValidation({}, {}, -1.0), Error);
}

TEST(WeightSpec, PerChannelByDefaultAndGroupsOverTheRows) {
  Shape view;
  const QuantSpec pc = integer_weight_spec(8, 0, {16, 4, 3, 3}, view);
  EXPECT_EQ(pc.granularity, Granularity::kPerChannel);
  EXPECT_EQ(view, (Shape{16, 4, 3, 3}));
  EXPECT_EQ(integer_weight_spec(8, 0, {7}, view).granularity, Granularity::kPerTensor);
  const QuantSpec g = integer_weight_spec(4, 12, {16, 4, 3, 3}, view);  // rows of 36: 3 groups each
  EXPECT_EQ(g.granularity, Granularity::kPerGroup);
  EXPECT_EQ(g.bits, 4);
  EXPECT_EQ(view, (Shape{16, 36}));
  integer_weight_spec(4, 32, {16, 36}, view);  // 32 does not divide 36 but divides 576
  EXPECT_EQ(view, (Shape{576}));
  EXPECT_THROW(integer_weight_spec(4, 7, {16, 36}, view), Error);
  const QuantSpec d = default_weight_spec(2);
  EXPECT_EQ(d.bits, 8);
  EXPECT_TRUE(d.is_signed);
  EXPECT_EQ(d.scheme, Scheme::kSymmetric);
  EXPECT_EQ(d.granularity, Granularity::kPerChannel);
}

}  // namespace
}  // namespace qk

namespace qk {
namespace {

// calib.json and the quantized-file meta share one spec codec; calib.json keeps its own wording for an
// unknown scheme or granularity ("unknown scheme 'x'", the tensor named by its reader, no " in spec").
TEST(Calibration, UnknownSchemeKeepsCalibJsonWording) {
  ScratchDir dir;
  const std::vector<float> v = normal_values(64, 30, 0.0f, 1.0f);
  io::write_npy<float>(dir.file("x.npy"), TensorView<const float>(v.data(), {64}));
  const ObserverMap observers = calibrate_files({dir.file("x.npy")}, ObserverConfig{});
  write_calibration(dir.file("calib.json"), observers, calibration_results(observers));
  std::string text;
  {
    std::ifstream in(dir.file("calib.json"));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string from = "\"scheme\": \"symmetric\"";
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << text.substr(0, 400);
  text.replace(at, from.size(), "\"scheme\": \"x\"");
  {
    std::ofstream out(dir.file("bad.json"));
    out << text;
  }
  try {
    read_calibration(dir.file("bad.json"));
    FAIL() << "an unknown scheme was accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("unknown scheme 'x'"), std::string::npos) << what;
    EXPECT_EQ(what.find(" in spec"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace qk
