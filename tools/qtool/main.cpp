// qtool: the command-line front end of quantkit. Parses, calls the library, prints; no math here.
// Exit codes: 0 ok, 1 failure (bad input, I/O), 2 usage error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <map>

#include "common.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/file_error.hpp"

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
    std::fprintf(stderr, "qtool: usage error: %s\nRun 'qtool --help' for usage.\n", e.what());
    return 2;
  }
  try {
    for (auto& [sub, handler] : handlers) {
      if (sub->parsed()) return handler();
    }
    return 2;
  } catch (const qtool::UsageError& e) {
    qtool::finish_progress();
    std::fprintf(stderr, "qtool: usage error: %s\n", e.what());
    return 2;
  } catch (const qk::FileError& e) {
    qtool::finish_progress();
    std::fprintf(stderr, "qtool: error: %s%s\n", e.what(), qtool::remedy_hint(e.remedy()));
    return 1;
  } catch (const qk::Error& e) {
    qtool::finish_progress();
    std::fprintf(stderr, "qtool: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    qtool::finish_progress();
    std::fprintf(stderr, "qtool: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    qtool::finish_progress();
    std::fprintf(stderr, "qtool: error: %s\n", e.what());
    return 1;
  }
}
