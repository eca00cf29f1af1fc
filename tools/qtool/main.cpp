// qtool: the command-line front end of quantkit. Parses, calls the library, prints; no math here.
// Exit codes: 0 ok, 1 failure (bad input, I/O), 2 usage error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/file_error.hpp"
#include "quantkit/kernels/dispatch.hpp"

#ifndef QK_VERSION
#define QK_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  CLI::App app{
      "qtool: quantize, dequantize, fake-quantize, inspect and calibrate tensors stored as .npy / .npz, "
      "exercise the embedding cache, plan mixed precision, and "
      "benchmark the kernels "
      "(quantkit " QK_VERSION ")",
      "qtool"};
  app.set_version_flag("--version", "qtool (quantkit) " QK_VERSION);
  app.require_subcommand(1);
  qtool::Output out;
  app.add_flag("--json", out.json, "Machine-readable JSON output on stdout");
  std::map<CLI::App*, qtool::Handler> handlers;
  auto add = [&](qtool::Handler (*adder)(CLI::App&, qtool::Output&)) {
    const std::size_t before = app.get_subcommands({}).size();
    qtool::Handler h = adder(app, out);
    handlers[app.get_subcommands({})[before]] = std::move(h);
  };
  add(qtool::add_quantize);
  add(qtool::add_dequantize);
  add(qtool::add_fake_quant);
  add(qtool::add_inspect);
  add(qtool::add_demo);
  add(qtool::add_bench);
  add(qtool::add_calibrate);
  add(qtool::add_embed);
  add(qtool::add_mixed);
  for (auto& [sub, handler] : handlers)
    sub->add_flag("--json", out.json, "Machine-readable JSON output on stdout");

  // With --json every outcome is one JSON object on stdout: a failure prints {"error", "exit_code"} there
  // and its message on stderr as always. A parse error may come before --json was read, so look for it.
  bool json_requested = false;
  for (int i = 1; i < argc; ++i) json_requested |= std::string_view(argv[i]) == "--json";
  std::string subcommand;
  for (int i = 1; i < argc && subcommand.empty(); ++i)
    if (argv[i][0] != '-') subcommand = argv[i];
  auto fail = [&](int code, const std::string& kind, const std::string& message, const std::string& hint) {
    qtool::finish_progress();
    std::fprintf(stderr, "qtool: %s: %s%s\n", kind.c_str(), message.c_str(), hint.c_str());
    if (json_requested || out.json)
      std::printf("%s\n", nlohmann::json{{"error", message}, {"exit_code", code}}.dump().c_str());
    return code;
  };
  // Usage errors name the subcommand's help, so the pointer leads somewhere useful.
  auto help_hint = [&] {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known |= sub->get_name() == subcommand;
    return "\nRun 'qtool " + (known ? subcommand + " " : std::string()) + "--help' for usage.";
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion&) {
    std::printf("qtool (quantkit) %s\n", QK_VERSION);
    return 0;
  } catch (const CLI::ParseError& e) {
    return fail(2, "usage error", e.what(), help_hint());
  }
  try {
    qk::kernels::check_isa_environment();
  } catch (const qk::Error& e) {
    return fail(2, "usage error", e.what(), "");
  }
  try {
    for (auto& [sub, handler] : handlers) {
      if (sub->parsed()) return handler();
    }
    return 2;
  } catch (const qtool::UsageError& e) {
    return fail(2, "usage error", e.what(), help_hint());
  } catch (const qk::FileError& e) {
    return fail(1, "error", e.what(), qtool::remedy_hint(e.remedy()));
  } catch (const qk::Error& e) {
    return fail(1, "error", e.what(), "");
  } catch (const std::bad_alloc&) {
    return fail(1, "error", "out of memory", "");
  } catch (const std::exception& e) {
    return fail(1, "error", e.what(), "");
  }
}
