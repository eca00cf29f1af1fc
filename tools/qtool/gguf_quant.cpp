// qtool quantize ... -o OUT.gguf: options -> qk::quantize_gguf / qk::safetensors_to_gguf -> report.
#include "gguf_quant.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <optional>

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
  cmd.add_option("--target-bpw", args.target_bpw,
                 "Output .gguf: choose a type per tensor (rank >= 2) that minimises the measured error "
                 "within this many bits/weight over the whole model")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--target-bytes", args.target_bytes,
                 "Output .gguf: as --target-bpw, within a file of this many bytes")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--candidate-types", args.candidate_types,
                 "Output .gguf with a target: comma-separated types to choose among (default "
                 "q2_K,q3_K,q4_0,q4_1,q4_K,q5_0,q5_1,q5_K,q6_K,q8_0,f16)");
  cmd.add_option("--importance", args.importance,
                 "Output .gguf: per-column importance (llama-imatrix's .gguf, or an .npz of 1-D importances "
                 "or activations per tensor name) for ggml's weighted quantizers and the measured error");
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
  if (gguf.target_bpw > 0 && gguf.target_bytes > 0)
    throw UsageError("--target-bpw and --target-bytes: give one budget");
  if (gguf.target_bpw > 0) o.budget = {qk::GgufBudgetKind::kBitsPerWeight, gguf.target_bpw, {}};
  if (gguf.target_bytes > 0) o.budget = {qk::GgufBudgetKind::kFileBytes, gguf.target_bytes, {}};
  if (!gguf.candidate_types.empty()) {
    if (o.budget.kind == qk::GgufBudgetKind::kNone)
      throw UsageError("--candidate-types needs --target-bpw or --target-bytes");
    std::size_t start = 0;
    while (start <= gguf.candidate_types.size()) {
      const std::size_t comma = std::min(gguf.candidate_types.find(',', start), gguf.candidate_types.size());
      o.budget.candidates.push_back(
          parse_type(gguf.candidate_types.substr(start, comma - start), "--candidate-types"));
      start = comma + 1;
    }
  }
  if (o.budget.kind != qk::GgufBudgetKind::kNone && !gguf.type.empty())
    throw UsageError("--type and a target: the target chooses each tensor's type (use --candidate-types)");
  if (!gguf.importance.empty()) o.importance = qk::read_importance(gguf.importance);
  o.progress = make_progress(o.budget.kind == qk::GgufBudgetKind::kNone ? "quantize" : "measure + quantize");
  const auto start = std::chrono::steady_clock::now();
  const qk::GgufQuantReport r = from_gguf ? qk::quantize_gguf(args.input, args.output, o)
                                          : qk::safetensors_to_gguf(args.input, args.output, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  finish_progress();
  const bool budget = o.budget.kind != qk::GgufBudgetKind::kNone;
  // The chosen type's measured error on a tensor the budget chose for, as SQNR in dB.
  const auto chosen_sqnr = [](const qk::GgufTensorReport& t) -> std::optional<double> {
    for (const auto& [type, error] : t.candidate_errors)
      if (type == t.to) return error > 0 ? 10.0 * std::log10(t.signal / error) : INFINITY;
    return std::nullopt;
  };
  if (out.json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : r.tensors) {
      nlohmann::json j{{"name", t.name},
                       {"shape", t.shape},
                       {"from", t.from},
                       {"type", std::string(qk::ggml::traits(t.to).name)},
                       {"input_bytes", t.input_bytes},
                       {"output_bytes", t.output_bytes},
                       {"weighted", t.weighted}};
      if (!t.note.empty()) j["note"] = t.note;
      if (!t.candidate_errors.empty()) {
        nlohmann::json c = nlohmann::json::object();
        for (const auto& [type, error] : t.candidate_errors)
          c[std::string(qk::ggml::traits(type).name)] = error;
        j["candidate_errors"] = c;
        j["signal"] = t.signal;
        if (const auto db = chosen_sqnr(t); db && std::isfinite(*db)) j["sqnr_db"] = *db;
      }
      tensors.push_back(j);
    }
    nlohmann::json j{{"input", args.input},
                     {"output", args.output},
                     {"kind", "gguf"},
                     {"type", std::string(qk::ggml::traits(r.file_type).name)},
                     {"tensors", tensors},
                     {"dequantized_input", r.dequantized_input},
                     {"input_bytes", r.input_bytes},
                     {"output_bytes", r.output_bytes},
                     {"bits_per_weight", r.bits_per_weight},
                     {"dropped_metadata", r.dropped_metadata},
                     {"seconds", seconds}};
    if (budget)
      j["budget"] = {
          {"kind", o.budget.kind == qk::GgufBudgetKind::kBitsPerWeight ? "bits_per_weight" : "file_bytes"},
          {"value", o.budget.value},
          {"bytes", r.budget_bytes},
          {"total_error", r.total_error}};
    print_json(j);
    return 0;
  }
  fmt::print("quantized {} -> {}: {} tensor(s), {}{}{}\n", args.input, args.output, r.tensors.size(),
             budget ? "mostly " : "", qk::ggml::traits(r.file_type).name,
             r.dequantized_input ? " (the input's block-quantized tensors were dequantized first)" : "");
  for (const auto& t : r.tensors) {
    std::string extra = t.note;
    if (const auto db = chosen_sqnr(t))
      extra = fmt::format("SQNR {:.2f} dB{}", *db, extra.empty() ? "" : "; " + extra);
    if (t.weighted) extra += std::string(extra.empty() ? "" : "; ") + "importance-weighted";
    fmt::print("  {:<32} {:<16} {:>6} -> {:<6}{}\n", t.name, qk::shape_string(t.shape), t.from,
               qk::ggml::traits(t.to).name, extra.empty() ? "" : "  (" + extra + ")");
  }
  for (const auto& key : r.dropped_metadata)
    fmt::print("  metadata {} left out: an array of arrays, which ggml cannot read\n", key);
  const double ratio =
      r.output_bytes ? static_cast<double>(r.input_bytes) / static_cast<double>(r.output_bytes) : 0.0;
  fmt::print("  {} -> {} ({}), {:.2f} bits/weight, {:.3f} s\n", human_bytes(r.input_bytes),
             human_bytes(r.output_bytes), size_change(ratio), r.bits_per_weight, seconds);
  if (budget)
    fmt::print("  budget: {} ({} bytes of {}); total measured error {:.6g}\n",
               o.budget.kind == qk::GgufBudgetKind::kBitsPerWeight
                   ? fmt::format("{} bits/weight", o.budget.value)
                   : fmt::format("{} bytes", o.budget.value),
               r.budget_bytes, o.budget.kind == qk::GgufBudgetKind::kBitsPerWeight ? "tensor data" : "file",
               r.total_error);
  return 0;
}

}  // namespace qtool
