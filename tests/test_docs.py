"""The documentation's links and cited paths resolve, and no file points outside the repository.

README.md and docs/**/*.md are checked for:

* relative links and images (``[text](path)``, ``![alt](path)``, ``<img src=...>``): the file
  exists inside the repository, and a ``#anchor`` names a heading of the target page;
* repository paths cited in backticks (```mlpbench/runner.py```, ```examples/jax_backend```):
  a span counts as a path when it is a single path-like token whose first component is a
  top-level entry of the repository (so ```results/<timestamp>```, ```DIR/runs.jsonl```,
  ```--threads``` or ```figures/xor-loss.png``` are not paths);
* dotted names of the package in backticks (```mlpbench.backends.numpy_mlp```,
  ```mlpbench.load_results```): the module exists and defines the name; built-in plugins are
  named through the package, never as ``backends.<module>``.

Fenced code blocks are left alone: they hold commands and transcripts, not references.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Spelled in pieces so that this file does not mention them itself.
_MD = ".md"
FORBIDDEN = ("../" + "sha" + "red", "sha" + "red/" + "DE" + "SIGN" + _MD, "ST" + "YLE" + _MD)
# Top-level entries whose paths are outputs or local state, never references to the repository.
NOT_CITED = {"results"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+.*)?$", re.M)
HTML_SRC = re.compile(r"<(?:img|a|source)\b[^>]*?\b(?:src|href)=[\"']([^\"']+)[\"']", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
PATH_TOKEN = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*")
LINE_SUFFIX = re.compile(r":\d+(?::\d+)?$")
DOTTED = re.compile(r"mlpbench(?:\.[A-Za-z_]\w*)+")
OLD_IMPORT = re.compile(r"(?:backends|tasks)\.[a-z_]\w*")


# ------------------------------------------------------------------------------------ the repository
@cache
def repo_files() -> frozenset[str]:
    """Tracked files and new files git does not ignore, as POSIX paths relative to the root."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the repository's files")
    names = (n.decode("utf-8", "replace") for n in out.split(b"\0") if n)
    return frozenset(n for n in names if (ROOT / n).is_file())


@cache
def repo_dirs() -> frozenset[str]:
    """Every directory that holds a repository file."""
    dirs = set()
    for name in repo_files():
        parts = name.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(dirs)


def in_repo(rel: str) -> bool:
    """Whether `rel` (relative to the root, POSIX) is a repository file or directory."""
    rel = rel.strip("/")
    return rel in repo_files() or rel in repo_dirs()


@cache
def top_level() -> frozenset[str]:
    return frozenset(name.split("/", 1)[0] for name in repo_files()) - NOT_CITED


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# ------------------------------------------------------------------------------------- Markdown
def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
            if not line.strip()[len(m.group(1)) :].strip():
                fence = None
        elif fence is None:
            out.append((number, line))
    return out


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link text kept, markup and punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return frozenset(out)


def prose_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, paragraph) outside fenced code blocks; code spans and links may span lines."""
    blocks: list[tuple[int, str]] = []
    current: list[str] = []
    start = last = 0
    for number, line in prose_lines(text):
        if current and (not line.strip() or number != last + 1):
            blocks.append((start, "\n".join(current)))
            current = []
        if line.strip():
            if not current:
                start = number
            current.append(line)
        last = number
    if current:
        blocks.append((start, "\n".join(current)))
    return blocks


def links(text: str) -> list[str]:
    """Link and image targets in a piece of Markdown, code spans excluded."""
    bare = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return LINK.findall(bare) + HTML_SRC.findall(bare) + REFERENCE.findall(bare)


def code_spans(text: str) -> list[tuple[int, str]]:
    """(line offset within `text`, content) of every code span."""
    return [(text.count("\n", 0, m.start()), " ".join(m.group(2).split())) for m in CODE_SPAN.finditer(text)]


# ----------------------------------------------------------------------------------- the checks
def check_link(doc: Path, target: str) -> str | None:
    """Why a link target is broken, or None."""
    if SCHEME.match(target) or target.startswith("//"):
        return None  # a URL: not checked here
    path, _, anchor = target.partition("#")
    dest = (doc.parent / path).resolve() if path else doc
    try:
        rel = dest.relative_to(ROOT).as_posix()
    except ValueError:
        return f"{target}: points outside the repository"
    if path and not in_repo(rel):
        return f"{target}: no such file or directory in the repository ({rel})"
    if anchor and dest.suffix == ".md" and dest.is_file() and anchor not in anchors(dest):
        return f"{target}: {rel} has no heading #{anchor}"
    return None


def cited_path(span: str) -> str | None:
    """The repository path a code span cites, or None when it is not a repository path."""
    token = LINE_SUFFIX.sub("", span)
    if not PATH_TOKEN.fullmatch(token) or "//" in token:
        return None
    first = token.split("/", 1)[0]
    if first not in top_level():
        return None
    if "/" not in token and not (ROOT / token).is_file():
        return None  # a bare word that happens to name a top-level directory's sibling
    return token


@cache
def module_names(module: str) -> frozenset[str] | None:
    """Top-level names a module defines (from its source, without importing it), or None if it has no source."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def check_dotted(name: str) -> str | None:
    """Why a dotted ``mlpbench...`` name does not resolve, or None."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            rest = parts[i:]
            if not rest:
                return None
            defined = module_names(module)
            if defined is not None and rest[0] not in defined:
                return f"module {module} defines no {rest[0]}"
            return None
    return "no such module"


def problems(doc: Path) -> list[str]:
    rel = doc.relative_to(ROOT).as_posix()
    out = []
    for start, block in prose_blocks(doc.read_text(encoding="utf-8")):
        for target in links(block):
            why = check_link(doc, target)
            if why:
                out.append(f"{rel}:{start}: link {why}")
        for offset, span in code_spans(block):
            where = f"{rel}:{start + offset}"
            path = cited_path(span)
            if path is not None and not in_repo(path):
                out.append(f"{where}: `{span}` is not a file or directory of the repository")
            if DOTTED.fullmatch(span):
                why = check_dotted(span)
                if why:
                    out.append(f"{where}: `{span}`: {why}")
            if OLD_IMPORT.fullmatch(span):
                out.append(f"{where}: `{span}`: built-in plugins are imported as mlpbench.{span}")
    return out


# ------------------------------------------------------------------------------------------- tests
def test_the_docs_exist() -> None:
    docs = doc_files()
    assert (ROOT / "README.md") in docs and len(docs) > 1, docs


def test_links_and_cited_paths_resolve() -> None:
    broken = [p for doc in doc_files() for p in problems(doc)]
    if broken:
        pytest.fail("broken references in the docs:\n" + "\n".join(broken), pytrace=False)


def test_no_file_points_outside_the_repository() -> None:
    hits = []
    for name in sorted(repo_files()):
        data = (ROOT / name).read_bytes()
        if b"\0" in data:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            hits += [f"{name}:{number}: {word}" for word in FORBIDDEN if word in line]
    if hits:
        pytest.fail("files mention what lies outside the repository:\n" + "\n".join(hits), pytrace=False)


# ------------------------------------------------------------------------- the checker's own rules
@pytest.mark.parametrize(
    ("span", "path"),
    [
        ("mlpbench/runner.py", "mlpbench/runner.py"),
        ("backends/torch_mlp.py", "backends/torch_mlp.py"),
        ("examples/jax_backend", "examples/jax_backend"),
        ("examples/jax_backend/", "examples/jax_backend/"),
        ("mlpbench/report/__init__.py:161", "mlpbench/report/__init__.py"),
        ("pyproject.toml", "pyproject.toml"),
        ("results/<timestamp>", None),
        ("results/20261201-085208", None),
        ("DIR/runs.jsonl", None),
        ("figures/xor-loss.png", None),
        ("--threads", None),
        ("keras[engine=torch]", None),
        ("mlpbench.backends.numpy_mlp", None),
        ("tiny_mlp.py", None),
        ("python run_bench.py list", None),
    ],
)
def test_what_counts_as_a_cited_path(span: str, path: str | None) -> None:
    assert cited_path(span) == path


def test_the_checker_finds_broken_references() -> None:
    doc = ROOT / "docs" / "probe.md"  # never written: only its location matters for relative links
    assert check_link(doc, "running.md") is None
    assert check_link(doc, "running.md#tasks") is None
    assert "no heading" in check_link(doc, "running.md#no-such-section")
    assert "no such file" in check_link(doc, "missing.md")
    assert "outside the repository" in check_link(doc, "../../elsewhere.md")
    assert check_link(doc, "https://example.org/x.md") is None
    assert check_dotted("mlpbench.backends.numpy_mlp") is None
    assert check_dotted("mlpbench.load_results") is None
    assert "defines no no_such_module" in check_dotted("mlpbench.no_such_module")
    assert "defines no" in check_dotted("mlpbench.spec.NO_SUCH_NAME")
    assert links("see [a](a.md), ![b](img/b.png) and `[c](c.md)`") == ["a.md", "img/b.png"]
    assert slug("Time against work: `scaling`") == "time-against-work-scaling"
    assert slug("Bad input: exit status 2, before any work starts") == "bad-input-exit-status-2-before-any-work-starts"
