// Codebook element formats in quantized files (FP8 E4M3/E5M2, NF4): the streamed file quantizer against
// the in-memory rules (core/fp8.hpp's quantize_fp8, core/block_formats.hpp's quantize_nf4, the NF4 kernels'
// layout) at every granularity and chunk size, float16/float64 inputs, the saturate policy, all-zero and
// subnormal slots, the meta and method record round trip, and read_quantized refusing a tampered codebook
// file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "io_test_util.hpp"
#include "quantkit/quantkit.hpp"

namespace qk::io {
namespace {

using test::ScratchDir;

std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  return test::normal_values(n, seed, 0.0f, 2.0f);
}

unsigned seed() { return static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed()); }

FileQuantOptions codebook_options(ElementFormat element, Granularity g, std::int64_t group = 0,
                                  int axis = 0) {
  FileQuantOptions o;
  o.element = element;
  o.spec.granularity = g;
  o.spec.group_size = group;
  o.spec.axis = axis;
  return o;
}

TEST(CodebookFile, Fp8MatchesQuantizeFp8AtEveryGranularityAndChunk) {
  SCOPED_TRACE("seed " + std::to_string(seed()));
  const ScratchDir dir;
  const Shape shape{6, 40};
  std::vector<float> x = random_values(240, seed());
  x[17] = 1e-42f;                                      // a subnormal value
  x[100] = 900.0f;                                     // an outlier: its row's scale is set by it
  for (std::size_t i = 80; i < 120; ++i) x[i] = 0.0f;  // row 2 all zero (its scale is 1)
  write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), shape));
  for (const ElementFormat element : {ElementFormat::kFp8E4M3, ElementFormat::kFp8E5M2}) {
    for (const auto& [g, axis] :
         {std::pair{Granularity::kPerTensor, 0}, std::pair{Granularity::kPerChannel, 0},
          std::pair{Granularity::kPerChannel, 1}, std::pair{Granularity::kPerGroup, 0}}) {
      for (const std::int64_t chunk : {8, 24, 1 << 20}) {
        SCOPED_TRACE(std::string(to_string(element)) + " " + to_string(g) + " axis " + std::to_string(axis) +
                     " chunk " + std::to_string(chunk));
        FileQuantOptions o = codebook_options(element, g, 8, axis);
        o.chunk_elements = chunk;
        const FileQuantReport r = quantize_file(dir.file("x.npy"), dir.file("q.npz"), o);
        EXPECT_EQ(r.code_bits, 8);
        QuantSpec layout_spec = o.spec;
        const ChannelLayout layout = channel_layout(shape, layout_spec);
        const Fp8Quantized want = quantize_fp8(x, layout, fp8_format(element));
        const QuantizedFile file = read_quantized(dir.file("q.npz"));
        EXPECT_EQ(file.meta.element, element);
        EXPECT_EQ(file.params.scale, want.scale);
        EXPECT_EQ(file.q.to_vector<std::uint8_t>(), want.codes);
        EXPECT_EQ(dequantize_to_float(file), dequantize_fp8(want, layout));
      }
    }
  }
}

// An NF4 file in groups is the NF4 kernels' layout: its q and scale members equal quantize_nf4's codes and
// scales byte for byte, and the GEMV and dequantize take the file's members without a conversion.
TEST(CodebookFile, Nf4FileIsTheNf4KernelLayout) {
  SCOPED_TRACE("seed " + std::to_string(seed()));
  const ScratchDir dir;
  for (const auto& [shape, group] : std::vector<std::pair<Shape, std::int64_t>>{
           {{5, 128}, 64}, {{2, 3, 192}, 64}, {{4, 256}, 128}, {{3, 96}, 32}, {{7, 48}, 16}}) {
    const std::int64_t cols = shape.back();
    std::vector<float> x = random_values(static_cast<std::size_t>(shape_numel(shape)), seed() + 1);
    for (std::int64_t i = group; i < 2 * group; ++i)
      x[static_cast<std::size_t>(i)] = 0.0f;  // an all-zero group
    write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), shape));
    const Nf4Weights want = quantize_nf4(x, cols, group);
    std::vector<float> v(static_cast<std::size_t>(cols));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37f * static_cast<float>(i));
    for (const std::int64_t chunk : {8, 72, 1 << 20}) {
      SCOPED_TRACE("groups of " + std::to_string(group) + ", chunk " + std::to_string(chunk));
      FileQuantOptions o = codebook_options(ElementFormat::kNf4, Granularity::kPerGroup, group);
      o.chunk_elements = chunk;
      quantize_file(dir.file("x.npy"), dir.file("q.npz"), o);
      const QuantizedFile file = read_quantized(dir.file("q.npz"));
      EXPECT_EQ(file.meta.code_bits, 4);
      const Nf4View w = nf4_view(file, "q.npz");
      EXPECT_EQ(w.rows, want.rows);
      EXPECT_EQ(w.cols, cols);
      EXPECT_EQ(w.group_size, group);
      EXPECT_EQ(std::vector<std::uint8_t>(w.codes.begin(), w.codes.end()), want.codes);
      EXPECT_EQ(std::vector<float>(w.scales.begin(), w.scales.end()), want.scales);
      EXPECT_EQ(want.scales[1], 1.0f) << "an all-zero group has scale 1";
      const std::vector<float> back = dequantize_to_float(file);
      EXPECT_EQ(kernels::dequantize(w), back);
      // The GEMV on the file's members against the product of its dequantized weights, in double.
      std::vector<float> y(static_cast<std::size_t>(w.rows));
      kernels::gemv(w, v, y);
      for (std::int64_t r = 0; r < w.rows; ++r) {
        double exact = 0, mag = 0;
        for (std::int64_t c = 0; c < cols; ++c) {
          exact += double(back[r * cols + c]) * v[c];
          mag += std::fabs(double(back[r * cols + c]) * v[c]);
        }
        EXPECT_NEAR(y[r], exact, cols * 0x1p-24 * mag) << "row " << r;
      }
    }
  }
}

TEST(CodebookFile, Nf4ViewRefusesOtherFiles) {
  const ScratchDir dir;
  const Shape shape{4, 64};
  const std::vector<float> x = random_values(256, 3);
  write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), shape));
  quantize_file(dir.file("x.npy"), dir.file("fp8.npz"),
                codebook_options(ElementFormat::kFp8E4M3, Granularity::kPerGroup, 32));
  quantize_file(dir.file("x.npy"), dir.file("rows.npz"),
                codebook_options(ElementFormat::kNf4, Granularity::kPerChannel));
  for (const char* name : {"fp8.npz", "rows.npz"}) {
    const QuantizedFile file = read_quantized(dir.file(name));
    try {
      (void)nf4_view(file, name);
      ADD_FAILURE() << name << " was taken for nf4 groups";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

TEST(CodebookFile, HalfAndDoubleInputsAndTheInMemoryApiAgree) {
  SCOPED_TRACE("seed " + std::to_string(seed()));
  const ScratchDir dir;
  const Shape shape{4, 64};
  const std::vector<float> x = random_values(256, seed() + 2);
  std::vector<double> xd(x.begin(), x.end());
  std::vector<half> xh;
  for (const float v : x) xh.push_back(half(v));
  write_npy<double>(dir.file("d.npy"), TensorView<const double>(xd.data(), shape));
  write_npy<half>(dir.file("h.npy"), TensorView<const half>(xh.data(), shape));
  write_npy<float>(dir.file("f.npy"), TensorView<const float>(x.data(), shape));
  for (const ElementFormat element : {ElementFormat::kFp8E4M3, ElementFormat::kNf4}) {
    const FileQuantOptions o = codebook_options(element, Granularity::kPerGroup, 32);
    const ChannelLayout layout = channel_layout(shape, o.spec);
    const CodebookTensor want = quantize_codebook(x, layout, element);
    quantize_file(dir.file("d.npy"), dir.file("d.npz"), o);
    quantize_file(dir.file("f.npy"), dir.file("f.npz"), o);
    const QuantizedFile fd = read_quantized(dir.file("d.npz")), ff = read_quantized(dir.file("f.npz"));
    EXPECT_EQ(fd.params.scale, want.scale);
    EXPECT_EQ(ff.params.scale, want.scale);
    std::vector<float> back(x.size());
    dequantize_codebook(want.codes, want.scale, layout, 0, element, back);
    EXPECT_EQ(dequantize_to_float(ff), back);
    EXPECT_EQ(dequantize_to_float(fd), back);
    // float16 input: exactly the float rule applied to the half values (widening a half is exact).
    quantize_file(dir.file("h.npy"), dir.file("h.npz"), o);
    const QuantizedFile fh = read_quantized(dir.file("h.npz"));
    EXPECT_EQ(fh.meta.dtype, DType::kFloat16);
    std::vector<float> widened;
    for (const half v : xh) widened.push_back(static_cast<float>(v));
    const CodebookTensor want_h = quantize_codebook(widened, layout, element);
    std::vector<float> back_h(x.size());
    dequantize_codebook(want_h.codes, want_h.scale, layout, 0, element, back_h);
    EXPECT_EQ(fh.params.scale, want_h.scale);
    EXPECT_EQ(dequantize_to_float(fh), back_h);
    // dequantize_file writes the same values.
    dequantize_file(dir.file("f.npz"), dir.file("back.npy"));
    EXPECT_EQ(read_npy(dir.file("back.npy")).to_vector<float>(), back);
  }
  // The in-memory API refuses NaN and mismatched sizes.
  std::vector<float> bad = x;
  bad[5] = NAN;
  const ChannelLayout layout =
      channel_layout(shape, codebook_options(ElementFormat::kNf4, Granularity::kPerTensor).spec);
  EXPECT_THROW(quantize_codebook(bad, layout, ElementFormat::kNf4), Error);
  EXPECT_THROW(quantize_codebook(std::span<const float>(x).first(10), layout, ElementFormat::kNf4), Error);
  EXPECT_THROW(quantize_codebook(x, layout, ElementFormat::kInt), Error);
}

// A slot whose amax is so small that its scale's inverse overflows float32 (FP8 scale = amax / 448, NF4
// scale = amax): the file is written and read back, and decodes to the values.
TEST(CodebookFile, SlotsWithTinyAmaxWriteAndReadBack) {
  const ScratchDir dir;
  std::vector<float> x(128, 0.0f);
  // amax 2.4e-39 (subnormal): 1 / scale overflows for every format, NF4's scale = amax included.
  for (std::size_t i = 0; i < 64; ++i) x[i] = (i % 2 ? 1.0f : -1.0f) * 4e-40f * static_cast<float>(i % 7);
  for (std::size_t i = 64; i < 128; ++i) x[i] = 0.5f;
  x[70] = 4e-45f;  // denormal in a slot of normal values
  write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), Shape{2, 64}));
  for (const ElementFormat element :
       {ElementFormat::kFp8E4M3, ElementFormat::kFp8E5M2, ElementFormat::kNf4}) {
    SCOPED_TRACE(to_string(element));
    quantize_file(dir.file("x.npy"), dir.file("q.npz"), codebook_options(element, Granularity::kPerChannel));
    const QuantizedFile file = read_quantized(dir.file("q.npz"));
    EXPECT_FALSE(std::isfinite(1.0f / file.params.scale[0])) << "the case this test is for";
    const std::vector<float> back = dequantize_to_float(file);
    for (std::size_t i = 0; i < 64; ++i) EXPECT_NEAR(back[i], x[i], 0.3 * 2.4e-39) << i;
    EXPECT_NEAR(back[64], 0.5f, 1e-6);
    EXPECT_NO_THROW(dequantize_file(dir.file("q.npz"), dir.file("back.npy")));
  }
}

TEST(CodebookFile, NonFiniteInputIsRejectedOrSaturated) {
  const ScratchDir dir;
  std::vector<float> x = {1.0f, -2.0f, INFINITY, -INFINITY, NAN, 0.5f, 3.0f, -3.0f};
  write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), Shape{8}));
  for (const ElementFormat element :
       {ElementFormat::kFp8E4M3, ElementFormat::kFp8E5M2, ElementFormat::kNf4}) {
    std::filesystem::remove(dir.file("q.npz"));
    FileQuantOptions o = codebook_options(element, Granularity::kPerTensor);
    EXPECT_THROW(quantize_file(dir.file("x.npy"), dir.file("q.npz"), o), Error);
    EXPECT_FALSE(std::filesystem::exists(dir.file("q.npz"))) << "nothing written on failure";
    o.nonfinite = NonFinitePolicy::kSaturate;
    const FileQuantReport r = quantize_file(dir.file("x.npy"), dir.file("q.npz"), o);
    EXPECT_EQ(r.nonfinite, 3);
    const std::vector<float> back = dequantize_to_float(read_quantized(dir.file("q.npz")));
    EXPECT_FLOAT_EQ(back[2], 3.0f) << to_string(element) << ": +Inf -> the largest value (amax 3)";
    EXPECT_FLOAT_EQ(back[3], -3.0f);
    EXPECT_EQ(back[4], 0.0f) << "NaN -> 0";
    EXPECT_FLOAT_EQ(back[6], 3.0f);
  }
}

TEST(CodebookFile, MetaAndMethodRecordRoundTrip) {
  QuantizedFileMeta m = codebook_meta(ElementFormat::kNf4,
                                      codebook_options(ElementFormat::kNf4, Granularity::kPerGroup, 64).spec,
                                      Shape{2, 128}, DType::kFloat32);
  m.method = MethodRecord{"gptq", 4096, 0.25, 1.5, 3.0};
  const QuantizedFileMeta back = decode_meta(encode_meta(m), "x.npz");
  EXPECT_EQ(back.element, ElementFormat::kNf4);
  EXPECT_EQ(back.code_bits, 4);
  EXPECT_FALSE(back.spec.is_signed);
  EXPECT_EQ(back.range.max, 15);
  EXPECT_EQ(back.spec.group_size, 64);
  ASSERT_TRUE(back.method.has_value());
  EXPECT_EQ(back.method->name, "gptq");
  EXPECT_EQ(back.method->calibration_rows, 4096);
  EXPECT_EQ(back.method->output_error, 1.5);
  EXPECT_EQ(back.method->rtn_output_error, 3.0);
  // An integer file written before "element" existed still reads, as int, and says version 1.
  QuantizedFileMeta int_meta;
  int_meta.shape = {4};
  int_meta.range = int_meta.spec.range();
  std::string old = encode_meta(int_meta);
  EXPECT_NE(old.find("\"format\":\"quantkit.qtensor/1\""), std::string::npos) << old;
  old.replace(old.find("\"element\":\"int\","), 16, "");
  ASSERT_EQ(old.find("element"), std::string::npos) << old;
  EXPECT_EQ(decode_meta(old, "x.npz").element, ElementFormat::kInt);
  // Codebook files say version 2; a version-1 meta claiming a codebook element is refused.
  std::string fp8 =
      encode_meta(codebook_meta(ElementFormat::kFp8E4M3, QuantSpec{}, Shape{4}, DType::kFloat32));
  EXPECT_EQ(decode_meta(fp8, "x.npz").element, ElementFormat::kFp8E4M3);
  EXPECT_NE(fp8.find("quantkit.qtensor/2"), std::string::npos) << fp8;
  std::string as_v1 = fp8;
  as_v1.replace(as_v1.find("quantkit.qtensor/2"), 18, "quantkit.qtensor/1");
  EXPECT_THROW(decode_meta(as_v1, "x.npz"), Error);
  EXPECT_THROW(decode_meta(fp8.replace(fp8.find("fp8-e4m3"), 8, "fp9-e4m3"), "x.npz"), Error);
  std::string wrong_bits =
      encode_meta(codebook_meta(ElementFormat::kNf4, QuantSpec{}, Shape{4}, DType::kFloat32));
  wrong_bits.replace(wrong_bits.find("\"quant_max\":15"), 14, "\"quant_max\":14");
  EXPECT_THROW(decode_meta(wrong_bits, "x.npz"), Error);
}

TEST(CodebookFile, TamperedFilesAreRefused) {
  const ScratchDir dir;
  const std::vector<float> x = random_values(64, seed() + 3);
  write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), Shape{64}));
  quantize_file(dir.file("x.npy"), dir.file("q.npz"),
                codebook_options(ElementFormat::kFp8E4M3, Granularity::kPerTensor));
  const QuantizedFile good = read_quantized(dir.file("q.npz"));
  auto rewrite = [&](const std::string& path, bool with_book, std::vector<float> book, std::int32_t zp) {
    NpzWriter w;
    w.add<std::uint8_t>("q", Shape{64}, std::span<const std::uint8_t>(good.q.to_vector<std::uint8_t>()));
    w.add<float>("scale", Shape{}, std::span<const float>(good.params.scale));
    const std::vector<std::int32_t> z{zp};
    w.add<std::int32_t>("zero_point", Shape{}, std::span<const std::int32_t>(z));
    if (with_book)
      w.add<float>("codebook", Shape{static_cast<std::int64_t>(book.size())}, std::span<const float>(book));
    // With a zero_point member: a version-2 file, as written before zero points of 0 were left out.
    QuantizedFileMeta meta = good.meta;
    meta.zero_point_member = true;
    w.add_encoded("meta", encode_npy_string(encode_meta(meta)));
    w.write(path);
  };
  std::vector<float> book = codebook(ElementFormat::kFp8E4M3);
  rewrite(dir.file("ok.npz"), true, book, 0);
  EXPECT_NO_THROW(read_quantized(dir.file("ok.npz")));
  rewrite(dir.file("nobook.npz"), false, book, 0);
  EXPECT_THROW(read_quantized(dir.file("nobook.npz")), Error);
  rewrite(dir.file("zp.npz"), true, book, 3);
  EXPECT_THROW(read_quantized(dir.file("zp.npz")), Error);
  book[9] *= 2;
  rewrite(dir.file("book.npz"), true, book, 0);
  try {
    (void)read_quantized(dir.file("book.npz"));
    ADD_FAILURE() << "a wrong codebook was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("book.npz: codebook value 9"), std::string::npos) << e.what();
  }
}

// The in-memory reader (the fuzz target's entry point) agrees with the file reader on every file of the
// fuzz seed corpus: integer per channel, packed per group, unsigned affine, FP8, NF4, AWQ's input_scale.
TEST(ReadQuantizedBytes, AgreesWithTheFileReaderOnTheFuzzCorpus) {
  const std::filesystem::path corpus = std::filesystem::path(QK_SOURCE_DIR) / "tests/fuzz/corpus/qfile";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    const std::string path = entry.path().string();
    SCOPED_TRACE(path);
    std::ifstream in(path, std::ios::binary);
    const std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const QuantizedFile from_bytes =
        read_quantized_bytes(std::as_bytes(std::span<const char>(raw)), entry.path().filename().string());
    const QuantizedFile from_file = read_quantized(path);
    EXPECT_EQ(encode_meta(from_bytes.meta), encode_meta(from_file.meta));
    EXPECT_EQ(from_bytes.params.scale, from_file.params.scale);
    EXPECT_EQ(from_bytes.input_scale, from_file.input_scale);
    EXPECT_EQ(dequantize_to_float(from_bytes), dequantize_to_float(from_file));
    ++files;
  }
  EXPECT_EQ(files, 7);
  // Truncated bytes are an error naming the buffer, not a crash.
  const std::vector<std::byte> cut(100, std::byte{0x50});
  EXPECT_THROW(read_quantized_bytes(cut, "cut.npz"), Error);
}

}  // namespace
}  // namespace qk::io
