#!/usr/bin/env python3
"""Checks quantkit's layout rules on the source tree (README "Layout"); one subcommand per CTest.

  includes    every #include under include/ and src/ is an edge module_map.json allows; the map is acyclic
  cli-words   no string literal under include/ or src/ names qtool or one of its --options
  sizes       no file under include/ or src/ over 500 lines; no tools/qtool/cmd_*.cpp over 200 lines
  public      no installed header uses Eigen (an include, a type or a macro) (the library links it privately)

Exit 0 when the rule holds; otherwise one line per violation on stderr and exit 1.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE_SUFFIXES = {".hpp", ".h", ".cpp", ".cc"}
# Quoted includes, and angle-bracket includes of quantkit's own headers (which would otherwise slip past).
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+(?:"([^"]+)"|<(quantkit/[^>]+)>)', re.M)


def library_files():
    for top in ("include/quantkit", "src"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in SOURCE_SUFFIXES:
                yield path


def module_of(path):
    """The module a library file belongs to: include/quantkit/<m>/... or src/<m>/...; None for the umbrella."""
    rel = path.relative_to(ROOT).parts
    if rel[0] == "include":
        return rel[2] if len(rel) > 3 else None
    return rel[1] if len(rel) > 2 else None


def resolve(including, target):
    if target.startswith("quantkit/"):
        return ROOT / "include" / target
    local = (including.parent / target).resolve()
    return local if local.exists() else None


def find_cycle(graph):
    state = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack + [node, nxt]
            if state.get(nxt) is None:
                found = visit(nxt, stack + [node])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node, [])
            if found:
                return found
    return None


def check_includes():
    spec = json.loads((ROOT / "tests/architecture/module_map.json").read_text())
    allowed = {m: set(deps) for m, deps in spec["modules"].items()}
    errors = []
    for m, deps in allowed.items():
        for d in deps:
            if d not in allowed:
                errors.append(f"module_map.json: {m} depends on unknown module {d}")
    cycle = find_cycle(allowed)
    if cycle:
        errors.append("module_map.json: the map has a cycle: " + " -> ".join(cycle))
    umbrella = ROOT / spec["umbrella"]
    actual = {}
    for path in library_files():
        src_module = module_of(path)
        rel = path.relative_to(ROOT)
        if path == umbrella:
            continue
        if src_module is None:
            errors.append(f"{rel}: lies outside every module folder")
            continue
        if src_module not in allowed:
            errors.append(f"{rel}: module '{src_module}' is not in tests/architecture/module_map.json")
            continue
        for quoted, angled in INCLUDE_RE.findall(path.read_text(errors="replace")):
            target = quoted or angled
            resolved = resolve(path, target)
            if resolved is None or not resolved.exists():
                errors.append(f"{rel}: includes '{target}', which is not a quantkit file")
                continue
            if resolved == umbrella:
                errors.append(f"{rel}: includes the umbrella header")
                continue
            dst_module = module_of(resolved)
            if dst_module is None or dst_module == src_module:
                continue
            actual.setdefault(src_module, set()).add(dst_module)
            if dst_module not in allowed[src_module]:
                errors.append(f"{rel}: {src_module} may not include {dst_module} ('{target}')")
    cycle = find_cycle(actual)
    if cycle:
        errors.append("the includes form a cycle: " + " -> ".join(cycle))
    return errors


STRING_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"')
CLI_WORD_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+|\bqtool\b")


def check_cli_words():
    errors = []
    for path in library_files():
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            code = line.split("//", 1)[0] if '"' not in line.split("//", 1)[0] else line
            if code.lstrip().startswith("#include"):
                continue
            # Adjacent literals are one string to the compiler ("-" "-acts"): join them before matching.
            joined = "".join(lit[1:-1] for lit in STRING_RE.findall(code))
            for literal in STRING_RE.findall(code) + ['"' + joined + '"']:
                hit = CLI_WORD_RE.search(literal)
                if hit:
                    errors.append(f"{path.relative_to(ROOT)}:{lineno}: string names the command line ({hit.group(0)}): {literal}")
    return errors


def check_sizes():
    errors = []
    for path in library_files():
        n = len(path.read_text(errors="replace").splitlines())
        if n > 500:
            errors.append(f"{path.relative_to(ROOT)}: {n} lines (a library file holds at most 500)")
    for path in sorted((ROOT / "tools/qtool").glob("cmd_*.cpp")):
        n = len(path.read_text(errors="replace").splitlines())
        if n > 200:
            errors.append(f"{path.relative_to(ROOT)}: {n} lines (a subcommand parses, calls and prints in at most 200)")
    return errors


EIGEN_USE_RE = re.compile(r"Eigen::|<Eigen/|\bEIGEN_")


def check_public():
    errors = []
    for path in sorted((ROOT / "include").rglob("*")):
        if path.is_file() and EIGEN_USE_RE.search(path.read_text(errors="replace")):
            errors.append(f"{path.relative_to(ROOT)}: an installed header uses Eigen")
    return errors


CHECKS = {"includes": check_includes, "cli-words": check_cli_words, "sizes": check_sizes, "public": check_public}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        print(f"usage: {sys.argv[0]} {'|'.join(CHECKS)}", file=sys.stderr)
        sys.exit(2)
    problems = CHECKS[sys.argv[1]]()
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{sys.argv[1]}: {'ok' if not problems else str(len(problems)) + ' violation(s)'}")
    sys.exit(1 if problems else 0)
