// qtool quantize ... -o OUT.gguf: options -> qk::quantize_gguf / qk::safetensors_to_gguf -> report.
#include "gguf_quant.hpp"

#include <fmt/format.h>

#include <chrono>

#include "quantkit/files/gguf_quant.hpp"
#include "quantkit/files/safetensors_quant.hpp"

namespace qtool {

namespace {

constexpr const char* kTypes = "q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K, f16, bf16 or f32";

qk::ggml::Type parse_type(const std::string& name, const std::string& option) {
  for (const qk::ggml::TypeTraits& t : qk::ggml::types()) {
    std::string a(t.name), b = name;
    for (auto* s : {&a, &b})
      for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (a == b && t.can_quantize) return t.type;
  }
  throw UsageError(option + " " + name + ": unknown type; choose " + kTypes);
}

}  // namespace

void add_gguf_args(CLI::App& cmd, GgufArgs& args) {
  cmd.add_option(
      "--type", args.type,
      std::string("Output .gguf: ggml type of the tensors of rank >= 2 (") + kTypes + "; default q8_0)");
  cmd.add_option("--tensor-type", args.tensor_types,
                 "Output .gguf: GLOB=TYPE gives matching tensors that type (repeatable, first match wins)");
  cmd.add_option(
      "--meta", args.meta,
      "Output .gguf from safetensors: KEY=VALUE metadata (a string), e.g. general.architecture=llama");
}

int run_gguf_quant(const FileQuantArgs& args, const GgufArgs& gguf, const Output& out) {
  const bool from_gguf = args.input.ends_with(".gguf");
  if (!from_gguf && !qk::is_safetensors_path(args.input))
    throw UsageError("a .gguf output is written from a .gguf or a safetensors model, not " + args.input);
  if (args.spec.any_integer_flag() || args.format != "int" || !args.calib.empty() || !args.include.empty() ||
      !args.exclude.empty())
    throw UsageError(
        "a .gguf output takes --type and --tensor-type (ggml's block types), not the .npz flags");
  if (from_gguf && !gguf.meta.empty())
    throw UsageError("--meta is for a safetensors input (a GGUF keeps its own)");
  qk::GgufQuantOptions o;
  o.type = parse_type(gguf.type.empty() ? "q8_0" : gguf.type, "--type");
  for (const std::string& spec : gguf.tensor_types) {
    const auto eq = spec.rfind('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("--tensor-type " + spec + ": expected GLOB=TYPE");
    o.tensor_types.emplace_back(spec.substr(0, eq), parse_type(spec.substr(eq + 1), "--tensor-type"));
  }
  for (const std::string& kv : gguf.meta) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--meta " + kv + ": expected KEY=VALUE");
    o.extra_metadata.emplace_back(kv.substr(0, eq), qk::io::GgufValue::of_string(kv.substr(eq + 1)));
  }
  o.progress = make_progress("quantize");
  const auto start = std::chrono::steady_clock::now();
  const qk::GgufQuantReport r = from_gguf ? qk::quantize_gguf(args.input, args.output, o)
                                          : qk::safetensors_to_gguf(args.input, args.output, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  finish_progress();
  if (out.json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : r.tensors) {
      nlohmann::json j{{"name", t.name},
                       {"shape", t.shape},
                       {"from", t.from},
                       {"type", std::string(qk::ggml::traits(t.to).name)},
                       {"input_bytes", t.input_bytes},
                       {"output_bytes", t.output_bytes}};
      if (!t.note.empty()) j["note"] = t.note;
      tensors.push_back(j);
    }
    print_json({{"input", args.input},
                {"output", args.output},
                {"kind", "gguf"},
                {"type", std::string(qk::ggml::traits(o.type).name)},
                {"tensors", tensors},
                {"dequantized_input", r.dequantized_input},
                {"input_bytes", r.input_bytes},
                {"output_bytes", r.output_bytes},
                {"seconds", seconds}});
    return 0;
  }
  fmt::print("quantized {} -> {}: {} tensor(s), {}{}\n", args.input, args.output, r.tensors.size(),
             qk::ggml::traits(o.type).name,
             r.dequantized_input ? " (the input's block-quantized tensors were dequantized first)" : "");
  for (const auto& t : r.tensors)
    fmt::print("  {:<32} {:<16} {:>6} -> {:<6}{}\n", t.name, qk::shape_string(t.shape), t.from,
               qk::ggml::traits(t.to).name, t.note.empty() ? "" : "  (" + t.note + ")");
  const double ratio =
      r.output_bytes ? static_cast<double>(r.input_bytes) / static_cast<double>(r.output_bytes) : 0.0;
  fmt::print("  {} -> {} ({}), {:.3f} s\n", human_bytes(r.input_bytes), human_bytes(r.output_bytes),
             size_change(ratio), seconds);
  return 0;
}

}  // namespace qtool
