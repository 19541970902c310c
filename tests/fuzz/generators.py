"""Hypothesis generators of hostile inputs: descriptions, Compose and Helm components, archives, SUT files.

Each generated ``Case`` is a set of files (relative path -> bytes) and the target a command is given.
The shapes follow the hostile-input report: hostile scalars and keys, deep nesting, alias bombs and
cycles, byte mutations, many documents; tar members with odd names, links (chains, loops, exponential
chains, missing hard-link targets), sparse members, header fields out of range; Helm templates with
many ``{{``; path-like component names.
"""

from __future__ import annotations

import copy
import functools
import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
COMPOSE_PACKAGE = FIXTURES / "packages" / "vendor-a-compose"
HELM_PACKAGE = FIXTURES / "packages" / "helm-app"


@dataclass(frozen=True)
class Case:
    """One hostile input: the files to write and what to hand the command."""

    kind: str  # description | compose | helm | archive | sut | http
    files: dict[str, bytes] = field(default_factory=dict)
    target: str = "pkg"  # relative to the case folder
    as_json: bool = False

    def write(self, folder: Path) -> Path:
        for name, data in self.files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (folder / "pkg").mkdir(exist_ok=True)
        return folder / self.target


# -- hostile values ----------------------------------------------------------------------------------

MARKUP = ["[/]", "[bold]x[/bold]", "^[a-z0-9-]+$", "[red", "[link=file:///etc/passwd]x[/link]"]
PATHS = ["../../../../../../etc/ssl", "..", ".", "/etc", "a/../../b", "x\x00y", "n" * 300, "\\..\\x"]
SCALARS: list[Any] = [
    None,
    True,
    0,
    -1,
    10**400,
    1.5e308,
    float("nan"),
    "",
    " ",
    "\x00",
    "\t",
    "\u202e",
    "é" * 10,
    *MARKUP,
    *PATHS,
    [],
    {},
    [None],
    {"$ref": "#/x"},
]

hostile_scalars = st.one_of(
    st.sampled_from(SCALARS),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(lambda n: "x" * n, st.integers(0, 200_000)),
    st.builds(lambda n: list(range(n)), st.integers(0, 5_000)),
)
hostile_keys = st.one_of(
    st.sampled_from([1, None, True, 3.5, "$ref", "[/]", "", "a" * 500, "x\x00"]), st.text(max_size=20)
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of a parsed document (for structural replacement)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    document = copy.deepcopy(document)
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return document


def _dump(value: Any) -> bytes:
    try:
        return yaml.safe_dump(value, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")
    except (yaml.YAMLError, ValueError, TypeError):
        return b"{}"


@st.composite
def structural(draw: st.DrawFn, base: Any) -> bytes:
    """The base document with one node replaced by a hostile value, or a hostile key added."""
    path = draw(st.sampled_from(_paths(base)))
    if draw(st.booleans()):
        return _dump(_replace(base, path, draw(hostile_scalars)))
    target = base
    for step in path:
        target = target[step]
    if not isinstance(target, dict):
        return _dump(_replace(base, path, {draw(hostile_keys): draw(hostile_scalars)}))
    extra = dict(target)
    extra[draw(hostile_keys)] = draw(hostile_scalars)
    return _dump(_replace(base, path, extra))


def _nested(depth: int, mapping: bool) -> bytes:
    return (
        (b"a: " + b"{a: " * depth + b"1" + b"}" * depth)
        if mapping
        else (b"a: " + b"[" * depth + b"]" * depth)
    )


def _laughs(levels: int, width: int) -> bytes:
    lines = ['l0: &l0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return ("\n".join(lines) + "\n").encode()


textual = st.one_of(
    st.builds(_nested, st.integers(1, 100_000), st.booleans()),
    st.builds(_laughs, st.integers(1, 10), st.integers(2, 10)),
    st.sampled_from(
        [
            b"a: &a [*a]\n",
            b"a: &a {b: *a}\n",
            b"a: !!int xyz\n",
            b"a: !!timestamp 2001-13-45\n",
            b"a: !!float x\n",
            b"a: " + b"9" * 5000 + b"\n",
            b"a: 1\n---\nb: 2\n",
            b"%YAML 1.1\n%TAG ! tag:x,2000:\n---\na: !x 1\n",
            b"? [a, b]\n: 1\n",
            b"{[a]: 1}\n",
            b"\xef\xbb\xbfa: 1\n",
            b"\xff\xfe\x00",
            b"a:\t1\n",
            b"a: \x00\n",
            b"",
            b"---\n" * 1000,
        ]
    ),
)


@st.composite
def byte_mutation(draw: st.DrawFn, base: bytes) -> bytes:
    """Insert, delete or flip bytes, or truncate."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "truncate", "flip"]))
        if action == "insert":
            data[position:position] = draw(
                st.sampled_from([b"\t", b"\x00", b"\r\n", b"\xff", b"[/]", b"*a", b"&a "])
            )
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 20))]
        elif action == "truncate":
            del data[position:]
        elif data:
            data[min(position, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def hostile_yaml(base_path: Path) -> st.SearchStrategy[bytes]:
    base = _load(base_path)
    return st.one_of(structural(base), textual, byte_mutation(base_path.read_bytes()))


# -- archives ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644
    pax: dict[str, str] = field(default_factory=dict)
    size: int | None = None  # a header that lies about the size


def tar_gz(entries: list[Entry]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.mode = entry.mode
            info.linkname = entry.linkname
            info.pax_headers = dict(entry.pax)
            info.size = len(entry.data) if entry.type == tarfile.REGTYPE else 0
            try:
                tar.addfile(info, io.BytesIO(entry.data) if info.size else None)
            except (ValueError, OverflowError, UnicodeError):
                continue
    return gzip.compress(raw.getvalue(), compresslevel=1)


def _sparse(name: str, apparent: int) -> Entry:
    """A PAX GNU sparse 1.0 member: a one-byte map entry at the end of ``apparent`` bytes."""
    sparse_map = f"1\n{apparent - 1}\n1\n".encode().ljust(512, b"\x00")
    pax = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(apparent),
    }
    return Entry(name=f"{name}.sparse", data=sparse_map + b"x", pax=pax)


def _chain(top: str, depth: int, exponential: bool) -> list[Entry]:
    entries = []
    for i in range(depth):
        target = f"x{i + 1}/../x{i + 1}" if exponential else f"x{i + 1}"
        entries.append(Entry(name=f"{top}/x{i}", type=tarfile.SYMTYPE, linkname=target, mode=0o777))
    entries.append(Entry(name=f"{top}/x{depth}", type=tarfile.DIRTYPE, mode=0o755))
    return entries


@st.composite
def hostile_entries(draw: st.DrawFn, top: str) -> list[Entry]:
    """A few hostile members under (or escaping) the top-level folder ``top``."""
    kind = draw(
        st.sampled_from(
            [
                "chain",
                "loop",
                "missing-hardlink",
                "self-hardlink",
                "sparse",
                "mtime",
                "uid",
                "long-name",
                "absolute",
                "dotdot",
                "escape-link",
                "device",
                "fifo",
                "setid",
                "many",
                "duplicate",
                "dir-file",
                "markup",
            ]
        )
    )
    if kind == "chain":
        return _chain(top, draw(st.integers(1, 60)), draw(st.booleans()))
    if kind == "loop":
        return [
            Entry(f"{top}/a", tarfile.SYMTYPE, linkname="b", mode=0o777),
            Entry(f"{top}/b", tarfile.SYMTYPE, linkname="a", mode=0o777),
            Entry(f"{top}/a/c", data=b"x"),
        ]
    if kind == "missing-hardlink":
        return [Entry(f"{top}/h", tarfile.LNKTYPE, linkname=f"{top}/nowhere")]
    if kind == "self-hardlink":
        return [Entry(f"{top}/h", tarfile.LNKTYPE, linkname=f"{top}/h")]
    if kind == "sparse":
        return [
            _sparse(
                f"{top}/{draw(st.sampled_from(['compose.yaml', 'templates/t.yaml', 'f']))}",
                2 ** draw(st.integers(20, 40)),
            )
        ]
    if kind == "mtime":
        return [
            Entry(
                f"{top}/m", data=b"x", pax={"mtime": draw(st.sampled_from(["-1e300", "1e300", "nan", "-1"]))}
            )
        ]
    if kind == "uid":
        return [Entry(f"{top}/u", data=b"x", pax={"uid": str(2**70), "gid": "-5"})]
    if kind == "long-name":
        return [Entry(f"{top}/" + "n" * draw(st.integers(100, 70_000)), data=b"x")]
    if kind == "absolute":
        return [Entry("/etc/evil", data=b"x")]
    if kind == "dotdot":
        return [Entry(f"{top}/../../evil", data=b"x")]
    if kind == "escape-link":
        return [
            Entry(f"{top}/d", tarfile.SYMTYPE, linkname="../..", mode=0o777),
            Entry(f"{top}/d/evil", data=b"x"),
        ]
    if kind == "device":
        return [Entry(f"{top}/dev", tarfile.CHRTYPE)]
    if kind == "fifo":
        return [Entry(f"{top}/fifo", tarfile.FIFOTYPE)]
    if kind == "setid":
        return [Entry(f"{top}/s", data=b"x", mode=0o6755)]
    if kind == "many":
        return [Entry(f"{top}/m{i}", data=b"") for i in range(draw(st.sampled_from([100, 2_000, 10_001])))]
    if kind == "duplicate":
        return [Entry(f"{top}/d", data=b"1"), Entry(f"{top}/d", data=b"2")]
    if kind == "dir-file":
        return [Entry(f"{top}/x", data=b"1"), Entry(f"{top}/x/y", data=b"2")]
    return [Entry(f"{top}/[bold]x[/]", data=b"x")]


def _folder_entries(folder: Path, top: str) -> list[Entry]:
    entries = [Entry(top, tarfile.DIRTYPE, mode=0o755)]
    for path in sorted(folder.rglob("*")):
        name = f"{top}/{path.relative_to(folder).as_posix()}"
        entries.append(
            Entry(name, tarfile.DIRTYPE, mode=0o755) if path.is_dir() else Entry(name, data=path.read_bytes())
        )
    return entries


# -- cases -------------------------------------------------------------------------------------------


def _package_files(package: Path, description: bytes | None = None) -> dict[str, bytes]:
    files = {
        f"pkg/{p.relative_to(package).as_posix()}": p.read_bytes()
        for p in package.rglob("*")
        if p.is_file() and "components" not in p.relative_to(package).parts
    }
    if description is not None:
        files["pkg/margo.yaml"] = description
    return files


@st.composite
def description_cases(draw: st.DrawFn) -> Case:
    """A package whose Application Description is hostile (no component artifacts)."""
    description = draw(hostile_yaml(COMPOSE_PACKAGE / "margo.yaml"))
    return Case("description", _package_files(COMPOSE_PACKAGE, description), as_json=draw(st.booleans()))


def _replaced(entries: list[Entry], name: str, data: bytes) -> list[Entry]:
    return [e if e.name != name else Entry(name, data=data) for e in entries]


def _component_case(kind: str, package: Path, archive: str, entries: list[Entry], as_json: bool) -> Case:
    """The package with ``components/<archive>`` made of ``entries`` (its other files as they are)."""
    files = _package_files(package)
    files[f"pkg/components/{archive}"] = tar_gz(entries)
    return Case(kind, files, as_json=as_json)


@st.composite
def compose_cases(draw: st.DrawFn) -> Case:
    """The compose package with a hostile component archive: hostile compose.yaml and/or members."""
    source = COMPOSE_PACKAGE / "components" / "sensor-hub"
    entries = _folder_entries(source, "sensor-hub")
    if draw(st.booleans()):
        entries = _replaced(entries, "sensor-hub/compose.yaml", draw(hostile_yaml(source / "compose.yaml")))
    if draw(st.booleans()):
        entries += draw(hostile_entries("sensor-hub"))
    return _component_case("compose", COMPOSE_PACKAGE, "sensor-hub.tar.gz", entries, draw(st.booleans()))


@st.composite
def helm_cases(draw: st.DrawFn) -> Case:
    """The Helm package with a hostile chart: Chart.yaml, templates with many '{{', hostile members."""
    source = HELM_PACKAGE / "components" / "metrics-gateway"
    entries = _folder_entries(source, "metrics-gateway")
    choice = draw(st.sampled_from(["chart", "template", "members"]))
    if choice == "chart":
        entries = _replaced(entries, "metrics-gateway/Chart.yaml", draw(hostile_yaml(source / "Chart.yaml")))
    elif choice == "template":
        count = draw(st.integers(1, 100_000))
        text = draw(st.sampled_from([b"{{" * count, b"{{- " * count + b"lookup", b"{{ lookup " * count]))
        entries.append(Entry("metrics-gateway/templates/hostile.yaml", data=text))
    else:
        entries += draw(hostile_entries("metrics-gateway"))
    return _component_case("helm", HELM_PACKAGE, "metrics-gateway.tgz", entries, draw(st.booleans()))


@st.composite
def archive_cases(draw: st.DrawFn) -> Case:
    """The compose package as a .tar.gz with hostile members, or hostile gzip wrappers."""
    entries = _folder_entries(COMPOSE_PACKAGE, "pkg") + draw(hostile_entries("pkg"))
    data = tar_gz(entries)
    wrapper = draw(st.sampled_from(["none", "truncate", "trailing", "flip", "multi", "not-gzip"]))
    if wrapper == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif wrapper == "trailing":
        data += draw(st.binary(max_size=64))
    elif wrapper == "flip" and data:
        index = draw(st.integers(10, len(data) - 1))
        data = data[:index] + bytes([data[index] ^ 0x10]) + data[index + 1 :]
    elif wrapper == "multi":
        data += gzip.compress(b"\x00" * 1024)
    elif wrapper == "not-gzip":
        data = draw(st.binary(max_size=256))
    return Case("archive", {"pkg.tar.gz": data}, target="pkg.tar.gz", as_json=draw(st.booleans()))


@st.composite
def path_name_cases(draw: st.DrawFn) -> Case:
    """A description whose component name is a path (the traversal of the report)."""
    document = _load(COMPOSE_PACKAGE / "margo.yaml")
    document["deploymentProfiles"][0]["components"][0]["name"] = draw(st.sampled_from(PATHS))
    return Case("description", _package_files(COMPOSE_PACKAGE, _dump(document)))


@st.composite
def sut_cases(draw: st.DrawFn) -> Case:
    """A hostile SUT file."""
    base = FIXTURES / "sut" / "reference.yaml"
    return Case("sut", {"sut.yaml": draw(hostile_yaml(base))}, target="sut.yaml")


def cases() -> st.SearchStrategy[Case]:
    return st.one_of(
        description_cases(),
        compose_cases(),
        helm_cases(),
        archive_cases(),
        path_name_cases(),
        sut_cases(),
        http_answer_cases(),
    )


# -- malformed HTTP answers (for the WFM client's checks) --------------------------------------------

HEADER_NAMES = ["Content-Type", "ETag", "Cache-Control", "Content-Encoding", "Vary", "Retry-After", "X-Odd"]
HEADER_VALUES = [
    "application/problem+json",
    "application/vnd.margo.manifest.v1+json; charset=utf-8",
    '"sha256:' + "0" * 64 + '"',
    'W/"x"',
    "private, max-age=31536000, immutable",
    "max-age=" + "9" * 5000,
    "gzip",
    "gzip, deflate, br",
    "Accept-Encoding",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "-1",
    "[/]",
    "",
    "\x00",
]


@functools.cache
def _gzip_bomb() -> bytes:
    """80 MiB of zeros in ~80 kB: more than the client's 64 MiB bound once inflated."""
    return gzip.compress(b"\x00" * (80 * 1024 * 1024), compresslevel=9)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """Problem documents and manifests, whole, cut, deep or with hostile values."""
    choice = draw(st.sampled_from(["problem", "manifest", "deep", "bytes", "gzip", "bomb", "nan"]))
    if choice == "problem":
        document: Any = {"type": draw(hostile_scalars), "title": "x", "status": draw(hostile_scalars)}
        document["errors"] = draw(st.sampled_from([[], [{}], "x", None, [{"field": [1]}]]))
    elif choice == "manifest":
        document = {
            "manifestVersion": draw(hostile_scalars),
            "bundle": draw(hostile_scalars),
            "deployments": [1],
        }
    elif choice == "deep":
        depth = draw(st.integers(1, 100_000))
        return b"[" * depth + b"]" * depth
    elif choice == "bytes":
        return draw(st.binary(max_size=300))
    elif choice == "gzip":
        return gzip.compress(b'{"a": 1}')[: draw(st.integers(0, 30))]
    elif choice == "bomb":
        return _gzip_bomb()
    else:
        return b'{"status": NaN, "retryAfter": Infinity}'
    try:
        return json.dumps(document, default=str, allow_nan=True).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError):
        return b"{}"


@st.composite
def http_answer_cases(draw: st.DrawFn) -> Case:
    """A raw HTTP answer a WFM could send: status, headers (odd, repeated, huge), body."""
    status = draw(st.sampled_from([200, 201, 204, 304, 400, 404, 429, 500, 503, 99, 999]))
    headers = draw(
        st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.sampled_from(HEADER_VALUES)), max_size=8)
    )
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return Case(
        "http",
        {"answer.http": head.encode("utf-8", "surrogatepass") + b"\r\n" + draw(json_bodies())},
        target="answer.http",
    )
