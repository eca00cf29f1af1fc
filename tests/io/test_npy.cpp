// .npy: round trips of every dtype and shape kind, every malformed header, conversions, mmap, atomic writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "io_test_util.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npy.hpp"

namespace qk::io {
namespace {

using test::bits_of;
using test::bytes_of;

using test::make_npy;
using test::ScratchDir;
using testing::HasSubstr;
using testing::StartsWith;

// ---- round trips --------------------------------------------------------------------------------

template <class T>
T sample(std::size_t i) {
  if constexpr (std::is_same_v<T, bool>)
    return i % 3 == 0;
  else if constexpr (std::is_same_v<T, half>)
    return half(static_cast<float>(i) * 0.25f - 3.0f);
  else if constexpr (std::is_floating_point_v<T>)
    return static_cast<T>(static_cast<double>(i) * 0.375 - 4.0);
  else if constexpr (std::is_signed_v<T>)
    return static_cast<T>(static_cast<std::int64_t>(i * 37) - 100);
  else
    return static_cast<T>(i * 41);
}

template <class T>
std::vector<T> samples(std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = sample<T>(i);
  return v;
}

template <class T>
class NpyRoundTrip : public testing::Test {};
using AllTypes = testing::Types<float, double, half, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t,
                                std::int32_t, std::uint32_t, std::int64_t, std::uint64_t, bool>;
TYPED_TEST_SUITE(NpyRoundTrip, AllTypes);

TYPED_TEST(NpyRoundTrip, EveryShapeKindThroughAFile) {
  using T = TypeParam;
  const ScratchDir dir;
  const std::vector<Shape> shapes = {
      {}, {0}, {1}, {7}, {2, 3}, {3, 0, 2}, {2, 3, 4, 5}, {1, 1, 1, 1, 1, 1, 1, 9}, {257, 129}};
  for (const Shape& shape : shapes) {
    SCOPED_TRACE(shape_string(shape));
    const std::vector<T> values = samples<T>(static_cast<std::size_t>(shape_numel(shape)));
    const std::vector<std::byte> data = bytes_of(values);
    const std::string path = dir.file("a.npy");
    write_npy(path, dtype_of<T>(), shape, data);
    for (const std::size_t threshold : {std::size_t{0}, std::numeric_limits<std::size_t>::max()}) {
      const NpyArray a = read_npy(path, threshold);
      EXPECT_EQ(a.dtype(), dtype_of<T>());
      EXPECT_EQ(a.shape(), shape);
      EXPECT_EQ(a.numel(), shape_numel(shape));
      EXPECT_EQ(a.header().data_offset % 64, 0u);
      EXPECT_EQ(a.header().version_major, 1);
      EXPECT_TRUE(a.is_native_c_order());
      ASSERT_EQ(a.raw().size(), data.size());
      EXPECT_TRUE(std::equal(a.raw().begin(), a.raw().end(), data.begin()));
      const std::vector<T> back = a.to_vector<T>();
      ASSERT_EQ(back.size(), values.size());
      for (std::size_t i = 0; i < values.size(); ++i)
        ASSERT_EQ(bits_of<T>(back[i]), bits_of<T>(values[i])) << i;
      const TensorView<const T> view = a.view<T>();
      EXPECT_EQ(view.shape(), shape);
    }
  }
}

TYPED_TEST(NpyRoundTrip, EncodeThenParseInMemory) {
  using T = TypeParam;
  const std::vector<T> values = samples<T>(12);
  const NpyArray a = parse_npy(encode_npy(dtype_of<T>(), {3, 4}, bytes_of(values)), "mem.npy");
  EXPECT_EQ(a.name(), "mem.npy");
  const std::vector<T> back = a.to_vector<T>();
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(bits_of<T>(back[i]), bits_of<T>(values[i]));
}

TEST(NpyWrite, TemplateOverloadWritesAView) {
  const ScratchDir dir;
  const std::vector<float> values = samples<float>(6);
  write_npy<float>(dir.file("v.npy"), TensorView<const float>(values.data(), {2, 3}));
  EXPECT_EQ(read_npy(dir.file("v.npy")).to_vector<float>(), values);
}

TEST(NpyWrite, HeaderIsNumpysFormatPaddedTo64) {
  for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3}, Shape{1000000, 1000000, 7}}) {
    const std::vector<std::byte> header = encode_npy_header(DType::kFloat32, shape);
    ASSERT_EQ(header.size() % 64, 0u);
    const std::string text(reinterpret_cast<const char*>(header.data()), header.size());
    EXPECT_EQ(text.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    EXPECT_EQ(static_cast<std::size_t>(static_cast<unsigned char>(text[8]) |
                                       static_cast<unsigned char>(text[9]) << 8),
              header.size() - 10);
    EXPECT_THAT(
        text, HasSubstr("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }"));
    EXPECT_EQ(text.back(), '\n');
  }
}

TEST(NpyWrite, WrongDataSizeIsAnError) {
  const std::vector<std::byte> data(11);
  EXPECT_THROW(encode_npy(DType::kFloat32, {3}, data), Error);
  const ScratchDir dir;
  EXPECT_THAT([&] { write_npy(dir.file("x.npy"), DType::kFloat32, {3}, data); },
              testing::ThrowsMessage<Error>(AllOf(StartsWith(dir.file("x.npy")), HasSubstr("needs 12"))));
  EXPECT_THROW(encode_npy_header(DType::kFloat32, {2, -1}), Error);
  EXPECT_TRUE(dir.entries().empty());
}

// ---- accepted header variants ---------------------------------------------------------------------

TEST(NpyParse, AcceptsNumpyVariantsOfTheDict) {
  const std::vector<std::string> dicts = {
      "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }          \n",
      "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2, 3)}",
      "{'shape': (2,3), 'fortran_order': False, 'descr': '<i4'}\n",
      "  {  'descr' :'<i4' ,'fortran_order':False,'shape':( 2 , 3 , ) , }\n",
      "{'descr': '=i4', 'fortran_order': False, 'shape': (2L, 3L), }\n",
      "{'descr': 'i4', 'fortran_order': False, 'shape': (2, 3), }\r\n\t",
  };
  for (const std::string& dict : dicts) {
    SCOPED_TRACE(dict);
    const NpyArray a = parse_npy(make_npy(dict, 24), "ok.npy");
    EXPECT_EQ(a.dtype(), DType::kInt32);
    EXPECT_EQ(a.shape(), (Shape{2, 3}));
    EXPECT_FALSE(a.header().big_endian);
  }
}

TEST(NpyParse, ReadsVersions2And3) {
  const std::string dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }\n";
  for (const int major : {2, 3}) {
    const NpyArray a = parse_npy(make_npy(dict, 5, major), "v.npy");
    EXPECT_EQ(a.header().version_major, major);
    EXPECT_EQ(a.header().data_offset, 12 + dict.size());
    EXPECT_EQ(a.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{1, 8, 15, 22, 29}));
  }
}

TEST(NpyParse, BoolDescriptorsAndOneByteOrders) {
  for (const std::string descr : {"|b1", "?", "<b1", ">b1", "=?"}) {
    const NpyArray a =
        parse_npy(make_npy("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (3,)}", 3), "b.npy");
    EXPECT_EQ(a.dtype(), DType::kBool) << descr;
    EXPECT_TRUE(a.is_native_c_order());
  }
  EXPECT_FALSE(parse_npy(make_npy("{'descr': '>i1', 'fortran_order': False, 'shape': (3,)}", 3), "i.npy")
                   .header()
                   .big_endian);
}

TEST(NpyParse, EmptyAndZeroDim) {
  const NpyArray empty = parse_npy(
      make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 0, 99999999999), }", 0), "e.npy");
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_TRUE(empty.to_vector<double>().empty());
  const NpyArray scalar =
      parse_npy(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 8), "s.npy");
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.to_vector<double>().size(), 1u);
}

// ---- conversions ----------------------------------------------------------------------------------

std::vector<std::byte> big_endian_i4(const std::vector<std::int32_t>& v) {
  std::vector<std::byte> out;
  for (const std::int32_t x : v) {
    const auto u = static_cast<std::uint32_t>(x);
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::byte>((u >> s) & 0xff));
  }
  return out;
}

// A hand-made .npy whose data starts on a 64-byte boundary, as numpy's do.
NpyArray with_data(std::string dict, const std::vector<std::byte>& data) {
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  std::vector<std::byte> bytes = make_npy(dict + "\n", 0);
  bytes.insert(bytes.end(), data.begin(), data.end());
  return parse_npy(std::move(bytes), "conv.npy");
}

TEST(NpyConvert, BigEndianIsByteSwapped) {
  const std::vector<std::int32_t> values = {1, -2, 70000, std::numeric_limits<std::int32_t>::min()};
  const NpyArray a =
      with_data("{'descr': '>i4', 'fortran_order': False, 'shape': (4,), }", big_endian_i4(values));
  EXPECT_TRUE(a.header().big_endian);
  EXPECT_FALSE(a.is_native_c_order());
  EXPECT_EQ(a.to_vector<std::int32_t>(), values);
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{1, -2, 70000, -2147483648.0}));
  EXPECT_THROW(a.view<std::int32_t>(), Error);
}

TEST(NpyConvert, FortranOrderIsTransposedToCOrder) {
  // C-order values 0..23 of shape (2, 3, 4), stored in Fortran order: element (i, j, k) at i + 2j + 6k.
  std::vector<std::int32_t> fortran(24);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) fortran[static_cast<std::size_t>(i + 2 * j + 6 * k)] = i * 12 + j * 4 + k;
  std::vector<std::int32_t> c_order(24);
  for (int i = 0; i < 24; ++i) c_order[static_cast<std::size_t>(i)] = i;

  const NpyArray le =
      with_data("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }",
                test::to_bytes(std::string(reinterpret_cast<const char*>(fortran.data()), 96)));
  EXPECT_FALSE(le.is_native_c_order());
  EXPECT_EQ(le.to_vector<std::int32_t>(), c_order);
  const NpyArray be =
      with_data("{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3, 4), }", big_endian_i4(fortran));
  EXPECT_EQ(be.to_vector<std::int32_t>(), c_order);
  EXPECT_EQ(be.to_vector<float>()[5], 5.0f);
}

TEST(NpyConvert, FortranWithOneLongDimensionIsAlreadyCOrder) {
  const std::vector<std::int32_t> values = {4, 5, 6};
  const NpyArray a = with_data("{'descr': '<i4', 'fortran_order': True, 'shape': (1, 3, 1), }",
                               test::to_bytes(std::string(reinterpret_cast<const char*>(values.data()), 12)));
  EXPECT_TRUE(a.is_native_c_order());
  EXPECT_EQ(a.to_vector<std::int32_t>(), values);
}

TEST(NpyConvert, BetweenNumericDtypes) {
  const std::vector<float> values = {1.5f, -2.75f, 0.0f, 300.0f, -1e10f, std::nanf(""), INFINITY, 1e20f};
  const NpyArray a = parse_npy(encode_npy(DType::kFloat32, {8}, std::as_bytes(std::span(values))), "f.npy");
  // Float -> integer truncates like C, but NaN gives 0 and out-of-range values saturate (defined, unlike C).
  EXPECT_EQ(a.to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{1, -2, 0, 300, std::numeric_limits<std::int32_t>::min(), 0,
                                       std::numeric_limits<std::int32_t>::max(),
                                       std::numeric_limits<std::int32_t>::max()}));
  EXPECT_EQ(a.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{1, 0, 0, 255, 0, 0, 255, 255}));
  EXPECT_EQ(a.to_vector<std::int64_t>()[4], -10000000000);
  EXPECT_EQ(a.to_vector<std::uint64_t>()[7], std::numeric_limits<std::uint64_t>::max());  // 1e20 > 2^64
  // NaN is true, as in numpy.
  EXPECT_EQ(a.to_vector<bool>(), (std::vector<bool>{true, true, false, true, true, true, true, true}));
  EXPECT_EQ(a.to_vector<half>()[1].bits, half(-2.75f).bits);
  EXPECT_EQ(a.to_vector<half>()[3].bits, half(300.0f).bits);

  const std::vector<std::uint8_t> flags = {0, 1, 0, 1};
  const NpyArray b = parse_npy(encode_npy(DType::kBool, {4}, std::as_bytes(std::span(flags))), "b.npy");
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{0, 1, 0, 1}));
  EXPECT_EQ(b.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, 0, 1}));
  EXPECT_EQ(b.to_vector<half>()[1].bits, half(1.0f).bits);

  // Integer -> narrower integer wraps, as numpy's astype does.
  const std::vector<std::int32_t> ints = {300, -1, 65537};
  const NpyArray c = parse_npy(encode_npy(DType::kInt32, {3}, std::as_bytes(std::span(ints))), "i.npy");
  EXPECT_EQ(c.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{44, 255, 1}));
  EXPECT_EQ(c.to_vector<std::int16_t>(), (std::vector<std::int16_t>{300, -1, 1}));
}

TEST(NpyConvert, StoredBoolBytesOtherThanOneAreTrue) {
  const NpyArray a = with_data("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
                               {std::byte{0}, std::byte{2}, std::byte{255}});
  EXPECT_EQ(a.to_vector<bool>(), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(a.to_vector<std::int32_t>(), (std::vector<std::int32_t>{0, 1, 1}));
}

TEST(NpyConvert, DoubleToHalfRoundsOnce) {
  // 1 + 2^-11 + 2^-40 lies just above the tie between the halves 1 and 1 + 2^-10: correct rounding goes
  // up (0x3c01); rounding to float first loses the 2^-40 and the tie then goes to even (0x3c00).
  const std::vector<double> values = {1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40), 1e300, -1e-300,
                                      65519.0};
  const NpyArray a = parse_npy(encode_npy(DType::kFloat64, {4}, std::as_bytes(std::span(values))), "d.npy");
  const std::vector<half> h = a.to_vector<half>();
  EXPECT_EQ(h[0].bits, 0x3c01);
  EXPECT_EQ(h[1].bits, 0x7c00);  // +inf
  EXPECT_EQ(h[2].bits, 0x8000);  // -0
  EXPECT_EQ(h[3].bits, 0x7bff);  // 65504, the largest half
}

TEST(NpyConvert, HalfToOthers) {
  const std::vector<half> values = {half(1.5f), half(-65504.0f), half::from_bits(0x7e00)};
  const NpyArray a = parse_npy(encode_npy(DType::kFloat16, {3}, std::as_bytes(std::span(values))), "h.npy");
  const std::vector<double> d = a.to_vector<double>();
  EXPECT_EQ(d[0], 1.5);
  EXPECT_EQ(d[1], -65504.0);
  EXPECT_TRUE(std::isnan(d[2]));
  EXPECT_EQ(a.to_vector<std::int16_t>(), (std::vector<std::int16_t>{1, -32768, 0}));
}

TEST(NpyView, ChecksDtype) {
  const std::vector<float> values = {1, 2};
  const NpyArray a = parse_npy(encode_npy(DType::kFloat32, {2}, std::as_bytes(std::span(values))), "v.npy");
  EXPECT_THAT([&] { (void)a.view<double>(); },
              testing::ThrowsMessage<Error>(HasSubstr("v.npy: expected dtype float64, got float32")));
  EXPECT_EQ(a.view<float>().flat()[1], 2.0f);
}

TEST(NpyView, MisalignedDataIsNotViewedInPlace) {
  // A hand-made header of odd length puts float data at an odd offset: converting is fine, viewing not.
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  if ((10 + dict.size()) % 4 == 0) dict += ' ';
  std::vector<std::byte> bytes = make_npy(dict, 0);
  ASSERT_NE(bytes.size() % 4, 0u);
  const std::vector<float> values = {1.0f, -3.0f};
  const auto* p = reinterpret_cast<const std::byte*>(values.data());
  bytes.insert(bytes.end(), p, p + 8);
  const NpyArray a = parse_npy(std::move(bytes), "odd.npy");
  EXPECT_FALSE(a.is_native_c_order());
  EXPECT_EQ(a.to_vector<float>(), values);
}

// ---- strings ----------------------------------------------------------------------------------------

TEST(NpyString, RoundTripsUtf8) {
  for (const std::string text :
       {"", "a", "{\"format\": \"quantkit.qtensor/1\"}", "h\xc3\xa9llo \xe6\xbc\xa2 \xf0\x9f\x98\x80"}) {
    const NpyArray a = parse_npy(encode_npy_string(text), "s.npy");
    EXPECT_EQ(a.dtype(), DType::kUnicode);
    EXPECT_TRUE(a.shape().empty());
    EXPECT_EQ(a.as_string(), text);
  }
  const std::vector<std::byte> npy = encode_npy_string("h\xc3\xa9");
  EXPECT_EQ(npy.size() % 64, 8u);  // 64-aligned header, then 2 characters of 4 bytes
  EXPECT_THAT(std::string(reinterpret_cast<const char*>(npy.data()), npy.size()),
              HasSubstr("'descr': '<U2'"));
  EXPECT_EQ(parse_npy(encode_npy_string(""), "e.npy").header().item_size, 4u);  // numpy's '<U1' for ""
}

TEST(NpyString, BigEndianAndPadded) {
  // '>U4' holding "ab" and two NUL pads, as numpy stores a short string in a wider dtype.
  std::vector<std::byte> data(16, std::byte{0});
  data[3] = std::byte{'a'};
  data[7] = std::byte{'b'};
  const NpyArray a = with_data("{'descr': '>U4', 'fortran_order': False, 'shape': (), }", data);
  EXPECT_EQ(a.as_string(), "ab");
}

TEST(NpyString, Errors) {
  EXPECT_THROW(encode_npy_string("\xc3"), Error);          // truncated sequence
  EXPECT_THROW(encode_npy_string("\xc0\xaf"), Error);      // overlong '/'
  EXPECT_THROW(encode_npy_string("\xed\xa0\x80"), Error);  // surrogate
  EXPECT_THROW(encode_npy_string("\xff"), Error);
  const std::vector<float> values = {1};
  const NpyArray f = parse_npy(encode_npy(DType::kFloat32, {1}, std::as_bytes(std::span(values))), "f.npy");
  EXPECT_THAT([&] { (void)f.as_string(); },
              testing::ThrowsMessage<Error>(HasSubstr("f.npy: expected a unicode string")));
  const NpyArray two =
      with_data("{'descr': '<U1', 'fortran_order': False, 'shape': (2,), }", std::vector<std::byte>(8));
  EXPECT_THAT([&] { (void)two.as_string(); },
              testing::ThrowsMessage<Error>(HasSubstr("expected a single string")));
  EXPECT_THROW(two.to_vector<float>(), Error);
  std::vector<std::byte> bad(4, std::byte{0xff});
  const NpyArray invalid = with_data("{'descr': '<U1', 'fortran_order': False, 'shape': (), }", bad);
  EXPECT_THAT([&] { (void)invalid.as_string(); },
              testing::ThrowsMessage<Error>(HasSubstr("invalid code point")));
}

// ---- malformed input ------------------------------------------------------------------------------

struct BadCase {
  const char* what;
  std::vector<std::byte> bytes;
  const char* message;
};

std::string npy_prefix(int major, int minor) {
  return std::string("\x93NUMPY", 6) + char(major) + char(minor);
}

std::vector<BadCase> bad_cases() {
  const auto dict = [](const std::string& d, std::size_t data = 0, int major = 1) {
    return make_npy(d, data, major);
  };
  const std::string shape_only = "'fortran_order': False, 'shape': (3,), }";
  std::vector<BadCase> cases = {
      {"empty", {}, "not a .npy file (bad magic)"},
      {"wrong magic", test::to_bytes(std::string("\x93NUMPZ\x01\x00\x02\x00{}", 12)),
       "not a .npy file (bad magic)"},
      {"text file", test::to_bytes("hello world, this is not numpy"), "not a .npy file (bad magic)"},
      {"zip file", test::to_bytes("PK\x03\x04 and more"), "not a .npy file (bad magic)"},
      {"magic prefix only", test::to_bytes("\x93NU"), "truncated header"},
      {"no header length", test::to_bytes(npy_prefix(1, 0)), "truncated header"},
      {"half a header length", test::to_bytes(npy_prefix(1, 0) + "\x05"), "truncated header"},
      {"v2 short length", test::to_bytes(npy_prefix(2, 0) + std::string("\x05\x00\x00", 3)),
       "truncated header"},
      {"version 4.0", test::to_bytes(npy_prefix(4, 0) + std::string(2, '\0')),
       "unsupported .npy format version 4.0"},
      {"version 1.1", test::to_bytes(npy_prefix(1, 1) + std::string(2, '\0')),
       "unsupported .npy format version 1.1"},
      {"version 0.0", test::to_bytes(npy_prefix(0, 0)), "unsupported .npy format version 0.0"},
      {"header length past end", test::to_bytes(npy_prefix(1, 0) + "\xe8\x03{'descr'"),
       "runs past the end of the file"},
      {"v2 header length past end",
       test::to_bytes(npy_prefix(2, 0) + std::string("\x00\x00\x00\x01", 4) + "{}"),
       "runs past the end of the file"},
      {"empty dict text", dict(""), "malformed .npy header"},
      {"not a dict", dict("['descr', '<f4']"), "malformed .npy header"},
      {"unclosed dict", dict("{'descr': '<f4', " + shape_only.substr(0, shape_only.size() - 2)),
       "malformed .npy header"},
      {"unterminated string", dict("{'descr: '<f4', " + shape_only), "malformed .npy header"},
      {"unquoted key", dict("{descr: '<f4', " + shape_only), "malformed .npy header"},
      {"missing colon", dict("{'descr' '<f4', " + shape_only), "malformed .npy header"},
      {"missing comma", dict("{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}"),
       "malformed .npy header"},
      {"missing descr", dict("{" + shape_only, 12), "missing key 'descr'"},
      {"missing shape", dict("{'descr': '<f4', 'fortran_order': False}", 12), "missing key 'shape'"},
      {"missing fortran_order", dict("{'descr': '<f4', 'shape': (3,)}", 12), "missing key 'fortran_order'"},
      {"duplicate key", dict("{'descr': '<f4', 'descr': '<f4', " + shape_only, 12), "duplicate key 'descr'"},
      {"unknown key", dict("{'descr': '<f4', 'extra': 1, " + shape_only, 12), "unexpected key 'extra'"},
      {"fortran_order not bool", dict("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", 12),
       "fortran_order must be True or False"},
      {"fortran_order lowercase", dict("{'descr': '<f4', 'fortran_order': false, 'shape': (3,)}", 12),
       "fortran_order must be True or False"},
      {"shape not a tuple", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", 12),
       "is not a tuple"},
      {"shape a list", dict("{'descr': '<f4', 'fortran_order': False, 'shape': [3]}", 12),
       "malformed .npy header"},
      {"shape an int", dict("{'descr': '<f4', 'fortran_order': False, 'shape': 3}", 12),
       "malformed .npy header"},
      {"shape float dim", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}", 12),
       "malformed .npy header"},
      {"shape unclosed", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3,", 12),
       "malformed .npy header"},
      {"shape double comma", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3,,)}", 12),
       "malformed .npy header"},
      {"text after dict", dict("{'descr': '<f4', " + shape_only + " x", 12),
       "unexpected text after the dict"},
      {"descr not a string", dict("{'descr': 4, " + shape_only, 12), "malformed .npy header"},
      {"negative dim", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3)}"),
       "negative dimension"},
      {"dim overflows int64",
       dict("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"),
       "overflows 64 bits"},
      {"element count overflows",
       dict("{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"),
       "element count of shape (4294967296, 4294967296) overflows 64 bits"},
      {"byte count overflows",
       dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,)}"),
       "byte count of shape (2305843009213693952,) overflows 64 bits"},
      {"too many dims",
       dict("{'descr': '<f4', 'fortran_order': False, 'shape': (" +
            [] {
              std::string s;
              for (int i = 0; i < 65; ++i) s += "1,";
              return s;
            }() +
            ")}"),
       "more than 64 dimensions"},
      {"truncated data", dict("{'descr': '<f4', " + shape_only, 11),
       "truncated data: the header needs 12 bytes, the file has 11"},
      {"no data", dict("{'descr': '<f4', " + shape_only, 0), "truncated data"},
      {"trailing bytes", dict("{'descr': '<f4', " + shape_only, 13), "1 unexpected bytes after the data"},
      {"object", dict("{'descr': '|O', " + shape_only, 24),
       "object arrays are not supported (quantkit never unpickles)"},
      {"object no order", dict("{'descr': 'O', " + shape_only, 24), "object arrays are not supported"},
      {"structured", dict("{'descr': [('a', '<f4'), ('b', '<i4')], " + shape_only, 24), "unsupported dtype"},
      {"complex", dict("{'descr': '<c8', " + shape_only, 24), "unsupported dtype '<c8'"},
      {"datetime", dict("{'descr': '<M8[ns]', " + shape_only, 24), "unsupported dtype '<M8[ns]'"},
      {"bytes", dict("{'descr': '|S5', " + shape_only, 15), "unsupported dtype '|S5'"},
      {"odd float size", dict("{'descr': '<f3', " + shape_only, 9), "unsupported dtype '<f3'"},
      {"float16 as f16", dict("{'descr': '<f16', " + shape_only, 48), "unsupported dtype '<f16'"},
      {"empty descr", dict("{'descr': '', " + shape_only, 0), "unsupported dtype ''"},
      {"order only", dict("{'descr': '<', " + shape_only, 0), "unsupported dtype '<'"},
      {"void", dict("{'descr': '|V4', " + shape_only, 12), "unsupported dtype '|V4'"},
      {"unicode no size", dict("{'descr': '<U', " + shape_only, 12), "unsupported dtype '<U'"},
      {"v3 bad dict", dict("{'descr': '<f4'}", 0, 3), "missing key"},
  };
  return cases;
}

TEST(NpyParse, EveryMalformedInputIsAnErrorNamingTheFile) {
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT([&] { (void)parse_npy(c.bytes, "bad.npy"); },
                testing::ThrowsMessage<Error>(AllOf(StartsWith("bad.npy: "), HasSubstr(c.message))));
  }
}

TEST(NpyParse, EveryMalformedFileIsAnErrorNamingThePath) {
  const ScratchDir dir;
  const std::string path = dir.file("bad.npy");
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.what);
    test::write_bytes(path, c.bytes);
    for (const std::size_t threshold : {std::size_t{0}, std::numeric_limits<std::size_t>::max()}) {
      EXPECT_THAT([&] { (void)read_npy(path, threshold); },
                  testing::ThrowsMessage<Error>(AllOf(StartsWith(path + ": "), HasSubstr(c.message))));
    }
  }
}

TEST(NpyParse, EveryPrefixOfAValidFileIsAnError) {
  const std::vector<double> values = {1, 2, 3};
  const std::vector<std::byte> whole = encode_npy(DType::kFloat64, {3}, std::as_bytes(std::span(values)));
  for (std::size_t n = 0; n < whole.size(); ++n) {
    EXPECT_THROW(
        parse_npy(std::vector<std::byte>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)),
                  "p.npy"),
        Error)
        << n;
  }
}

TEST(NpyRead, MissingFileAndFolderAreErrors) {
  const ScratchDir dir;
  EXPECT_THAT(
      [&] { (void)read_npy(dir.file("nope.npy")); },
      testing::ThrowsMessage<Error>(AllOf(StartsWith(dir.file("nope.npy")), HasSubstr("cannot open"))));
  EXPECT_THAT([&] { (void)read_npy(dir.path().string()); },
              testing::ThrowsMessage<Error>(HasSubstr("not a regular file")));
}

// ---- memory map and release -----------------------------------------------------------------------

TEST(NpyMmap, MappedEqualsRead) {
  const ScratchDir dir;
  const std::vector<float> values = samples<float>(3 * 1000 * 700);
  write_npy(dir.file("big.npy"), DType::kFloat32, {3, 1000, 700}, std::as_bytes(std::span(values)));
  const NpyArray mapped = read_npy(dir.file("big.npy"), 0);
  const NpyArray copied = read_npy(dir.file("big.npy"), std::numeric_limits<std::size_t>::max());
  EXPECT_EQ(mapped.header().data_offset, copied.header().data_offset);
  EXPECT_EQ(mapped.shape(), copied.shape());
  ASSERT_EQ(mapped.raw().size(), copied.raw().size());
  EXPECT_EQ(std::memcmp(mapped.raw().data(), copied.raw().data(), copied.raw().size()), 0);
  EXPECT_EQ(mapped.to_vector<float>(), values);
  const std::span<const float> flat = mapped.view<float>().flat();
  EXPECT_TRUE(std::equal(flat.begin(), flat.end(), values.begin()));
}

TEST(NpyMmap, ReleaseDoesNotChangeWhatIsRead) {
  const ScratchDir dir;
  const std::vector<std::int64_t> values = samples<std::int64_t>(1 << 20);
  write_npy(dir.file("r.npy"), DType::kInt64, {1 << 20}, std::as_bytes(std::span(values)));
  const NpyArray mapped = read_npy(dir.file("r.npy"), 0);
  const std::span<const std::int64_t> flat = mapped.view<std::int64_t>().flat();
  const std::size_t bytes = mapped.raw().size();
  // Chunks that are not page multiples, the whole range, past-the-end and empty ranges.
  for (std::size_t offset = 0; offset < bytes; offset += 12345 * 8) mapped.release(offset, 12345 * 8);
  mapped.release(0, bytes);
  mapped.release(bytes, 100);
  mapped.release(bytes - 3, std::numeric_limits<std::size_t>::max());
  mapped.release(5, 0);
  EXPECT_TRUE(std::equal(flat.begin(), flat.end(), values.begin()));
  EXPECT_EQ(mapped.to_vector<std::int64_t>(), values);

  const NpyArray copied = read_npy(dir.file("r.npy"), std::numeric_limits<std::size_t>::max());
  copied.release(0, bytes);  // in memory: nothing to drop
  EXPECT_EQ(copied.to_vector<std::int64_t>(), values);
}

TEST(NpyMmap, ArrayOutlivesMovesAndCopiesOfStorage) {
  const ScratchDir dir;
  const std::vector<double> values = samples<double>(1000);
  write_npy(dir.file("m.npy"), DType::kFloat64, {1000}, std::as_bytes(std::span(values)));
  NpyArray moved;
  {
    NpyArray a = read_npy(dir.file("m.npy"), 0);
    moved = std::move(a);
  }
  std::filesystem::remove(dir.file("m.npy"));  // the mapping keeps the data alive
  EXPECT_EQ(moved.to_vector<double>(), values);
}

// ---- atomic writes --------------------------------------------------------------------------------

const std::vector<float> kThree = {1, 2, 3};

TEST(NpyAtomic, ReplacesAnExistingFileAndLeavesNoTemporary) {
  const ScratchDir dir;
  const std::string path = dir.file("w.npy");
  test::write_bytes(path, test::to_bytes("old contents"));
  write_npy(path, DType::kFloat32, {3}, std::as_bytes(std::span(kThree)));
  EXPECT_EQ(read_npy(path).to_vector<float>(), kThree);
  EXPECT_EQ(dir.entries(), std::set<std::string>{"w.npy"});
}

TEST(NpyAtomic, NewFileHasTheUmaskPermissions) {
  const ScratchDir dir;
  const mode_t old_mask = ::umask(027);
  write_npy(dir.file("p.npy"), DType::kFloat32, {3}, std::as_bytes(std::span(kThree)));
  ::umask(old_mask);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("p.npy").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(NpyAtomic, MissingFolderIsAnErrorNamingThePath) {
  const ScratchDir dir;
  const std::string path = dir.file("missing/w.npy");
  EXPECT_THAT([&] { write_npy(path, DType::kFloat32, {3}, std::as_bytes(std::span(kThree))); },
              testing::ThrowsMessage<Error>(AllOf(StartsWith(path + ": "),
                                                  HasSubstr("cannot create a temporary file"),
                                                  HasSubstr("No such file or directory"))));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(NpyAtomic, UnwritableFolderLeavesTheExistingFileUntouched) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores folder permissions";
  const ScratchDir dir;
  std::filesystem::create_directory(dir.path() / "ro");
  const std::string path = dir.file("ro/w.npy");
  test::write_bytes(path, test::to_bytes("old contents"));
  std::filesystem::permissions(dir.path() / "ro",
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  EXPECT_THAT([&] { write_npy(path, DType::kFloat32, {3}, std::as_bytes(std::span(kThree))); },
              testing::ThrowsMessage<Error>(AllOf(StartsWith(path + ": "), HasSubstr("Permission denied"))));
  std::filesystem::permissions(dir.path() / "ro", std::filesystem::perms::owner_all);
  EXPECT_EQ(test::read_bytes(path), test::to_bytes("old contents"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path() / "ro"), {}), 1);
}

TEST(NpyAtomic, FailedRenameRemovesTheTemporaryAndKeepsTheTarget) {
  // The destination is a non-empty folder: the temporary file is written, then rename fails.
  const ScratchDir dir;
  std::filesystem::create_directory(dir.path() / "target.npy");
  test::write_bytes(dir.file("target.npy/keep"), test::to_bytes("x"));
  EXPECT_THAT([&] { write_npy(dir.file("target.npy"), DType::kFloat32, {3}, std::as_bytes(std::span(kThree))); },
              testing::ThrowsMessage<Error>(
                  AllOf(StartsWith(dir.file("target.npy") + ": "), HasSubstr("rename failed"))));
  EXPECT_EQ(dir.entries(), std::set<std::string>{"target.npy"});
  EXPECT_TRUE(std::filesystem::exists(dir.file("target.npy/keep")));
}

TEST(NpyAtomic, UncommittedFileIsRemoved) {
  const ScratchDir dir;
  test::write_bytes(dir.file("u.npy"), test::to_bytes("old"));
  {
    AtomicFile file(dir.file("u.npy"));
    EXPECT_THAT(file.temp_path(), StartsWith(dir.file(".u.npy.tmp")));
    file.write(test::to_bytes("new"));
    EXPECT_EQ(dir.entries().size(), 2u);
  }
  EXPECT_EQ(dir.entries(), std::set<std::string>{"u.npy"});
  EXPECT_EQ(test::read_bytes(dir.file("u.npy")), test::to_bytes("old"));
}

TEST(NpyAtomic, RelativePathInTheCurrentFolder) {
  const ScratchDir dir;
  const auto old_cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  write_npy("rel.npy", DType::kFloat32, {3}, std::as_bytes(std::span(kThree)));
  std::filesystem::current_path(old_cwd);
  EXPECT_EQ(read_npy(dir.file("rel.npy")).to_vector<float>(), kThree);
  EXPECT_THROW(AtomicFile(""), Error);
  EXPECT_THROW(AtomicFile(dir.path().string() + "/"), Error);
}

TEST(CheckOutputDiffers, SamePathLinkAndInode) {
  const ScratchDir dir;
  const std::string a = dir.file("a.npy");
  test::write_bytes(a, test::to_bytes("a"));
  std::filesystem::create_hard_link(a, dir.file("hard.npy"));
  std::filesystem::create_symlink(a, dir.file("soft.npy"));
  test::write_bytes(dir.file("b.npy"), test::to_bytes("b"));
  EXPECT_THAT(
      [&] { check_output_differs(a, {a}); },
      testing::ThrowsMessage<Error>(AllOf(StartsWith(a + ": "), HasSubstr("same file as the input"))));
  EXPECT_THROW(check_output_differs(dir.file("./a.npy"), {a}), Error);
  EXPECT_THROW(check_output_differs(dir.file("hard.npy"), {dir.file("b.npy"), a}), Error);
  EXPECT_THROW(check_output_differs(dir.file("soft.npy"), {a}), Error);
  EXPECT_NO_THROW(check_output_differs(dir.file("b.npy"), {a}));
  EXPECT_NO_THROW(check_output_differs(dir.file("new.npy"), {a, dir.file("missing.npy")}));
  EXPECT_THROW(check_output_differs(dir.file("new.npy"), {dir.file("new.npy")}), Error);
}

// ---- dtype table ----------------------------------------------------------------------------------

// Arrays over bytes held elsewhere (a tensor inside a mapped model file) and over an owned buffer: the
// same views as a parsed .npy, the owner kept alive, and a byte count that does not fit the shape refused.
TEST(BorrowedArrays, ViewInPlaceKeepTheOwnerAndCheckTheSize) {
  auto owner =
      std::make_shared<std::vector<float>>(std::vector<float>{1.0f, -2.0f, 3.5f, 0.25f, 8.0f, -1.0f});
  const std::span<const std::byte> bytes = std::as_bytes(std::span<const float>(*owner));
  const NpyArray a = io::borrow_npy("t", DType::kFloat32, {2, 3}, bytes, owner, /*mapped=*/false);
  EXPECT_EQ(a.raw().data(), bytes.data());  // in place, no copy
  EXPECT_TRUE(a.is_native_c_order());
  EXPECT_EQ(a.view<float>().flat()[2], 3.5f);
  EXPECT_EQ(owner.use_count(), 2);
  a.release(0, bytes.size());  // not a mapping: a no-op
  EXPECT_EQ(a.to_vector<float>(), *owner);
  EXPECT_THAT(
      [&] {
        (void)io::borrow_npy("t", DType::kFloat32, {4, 3}, bytes, owner, false);
      },
      testing::ThrowsMessage<Error>(HasSubstr("t: 24 bytes of data for shape (4, 3)")));
  EXPECT_THROW((void)io::borrow_npy("t", DType::kFloat32, {-1, 3}, bytes, owner, false), Error);

  std::vector<std::byte> owned(bytes.begin(), bytes.end());
  const NpyArray b = io::make_npy("u", DType::kFloat32, {6}, std::move(owned));
  EXPECT_EQ(b.to_vector<float>(), *owner);
  EXPECT_EQ(b.shape(), (Shape{6}));
  EXPECT_THROW((void)io::make_npy("u", DType::kInt64, {6}, std::vector<std::byte>(24)), Error);
}

TEST(DTypeNames, ParseNamesAndDescriptors) {
  EXPECT_EQ(dtype_from_name("float32"), DType::kFloat32);
  EXPECT_EQ(dtype_from_name("f4"), DType::kFloat32);
  EXPECT_EQ(dtype_from_name("<f4"), DType::kFloat32);
  EXPECT_EQ(dtype_from_name("float16"), DType::kFloat16);
  EXPECT_EQ(dtype_from_name("half"), DType::kFloat16);
  EXPECT_EQ(dtype_from_name("|u1"), DType::kUint8);
  EXPECT_EQ(dtype_from_name("bool"), DType::kBool);
  EXPECT_EQ(dtype_from_name("?"), DType::kBool);
  EXPECT_EQ(dtype_from_name("uint64"), DType::kUint64);
  EXPECT_THAT([] { (void)dtype_from_name(">f4"); },
              testing::ThrowsMessage<Error>(HasSubstr("unknown dtype '>f4'")));
  EXPECT_THROW(dtype_from_name("complex64"), Error);
  EXPECT_THROW(dtype_from_name(""), Error);
  for (const DType d : {DType::kFloat16, DType::kFloat32, DType::kFloat64, DType::kInt8, DType::kUint8, DType::kInt16, DType::kUint16,
                        DType::kInt32, DType::kUint32, DType::kInt64, DType::kUint64, DType::kBool}) {
    EXPECT_EQ(dtype_from_name(dtype_name(d)), d);
    EXPECT_EQ(dtype_from_name(dtype_descr(d)), d);
    EXPECT_EQ(dtype_descr(d).size(), 3u);
    EXPECT_EQ(static_cast<std::size_t>(dtype_descr(d)[2] - '0'), dtype_size(d));
  }
  EXPECT_THROW(dtype_size(DType::kUnicode), Error);
  EXPECT_THROW(dtype_descr(DType::kUnicode), Error);
  EXPECT_TRUE(dtype_is_float(DType::kFloat16));
  EXPECT_FALSE(dtype_is_float(DType::kInt64));
}

}  // namespace
}  // namespace qk::io
