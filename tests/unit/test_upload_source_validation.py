"""Uploads in manifests (issue 25): `source: {file | url, sha256 | sha512, disk_format}`. Each rule of the
source's shape and of the address or path it names is reported at the field that breaks it, in words; the
valid forms load into the model, plain http is admitted only by the operator's --allow-http-loopback and only
to a loopback address, and a family's file source is built per version with {version} replaced."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
from roots_on_disk import problems_loading, write_root

from reconciler.desired import DesiredState
from reconciler.schemas import load_schema
from reconciler.validate import InvalidRootError, load_desired_state

ROOT_CONFIG = "version: 1\nset: platform\ncloud: {kind: nhn, project: 0123456789abcdef0123456789abcdef}\n"
ROOT_CONFIG += "defaults: {region: KR1}\n"
SHA256 = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
SHA512 = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
IMAGE = "6f1c0d2e-0000-4000-8000-000000000001"
UPLOAD_NEEDS = (
    "an upload gives its disk_format (qcow2, raw, vmdk, vhd or iso) and its digest: sha256 or sha512, exactly one"
)
RELATIVE = "give a path relative to the root, like build/web.qcow2 (looked up there, then in each --artifacts dir)"


def image(source: str, extra: str = "") -> dict[str, str]:
    """One manifest, images.yaml, declaring the image `web` with `source` written as a flow mapping on line 4."""
    return {"images.yaml": f"version: 1\nimages:\n  web:\n    source: {source}\n{extra}"}


def upload(**fields: str) -> str:
    """A flow mapping of an upload source, the fields in the order given."""
    return "{" + ", ".join(f"{name}: {value}" for name, value in fields.items()) + "}"


def file_source(path: str) -> str:
    return upload(file=path, sha256=SHA256, disk_format="qcow2")


def url_source(url: str) -> str:
    return upload(url=url, sha256=SHA256, disk_format="qcow2")


def loaded(tmp_path: Path, files: dict[str, str], *, allow_http_loopback: bool = False) -> DesiredState:
    return load_desired_state(write_root(tmp_path, ROOT_CONFIG, files), allow_http_loopback=allow_http_loopback)


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return problems_loading(write_root(tmp_path, ROOT_CONFIG, files))


def column_of(files: dict[str, str], text: str, line: int = 4) -> int:
    """The 1-based column where `text` starts on `line` of images.yaml."""
    return files["images.yaml"].splitlines()[line - 1].index(text) + 1


# -- the valid forms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (file_source("build/packer/web.qcow2"), ("file", "build/packer/web.qcow2", "sha256", "qcow2")),
        (
            url_source("https://artifacts.example.com/web.qcow2"),
            ("url", "https://artifacts.example.com/web.qcow2", "sha256", "qcow2"),
        ),
        (upload(file="web.raw", sha512=SHA512, disk_format="raw"), ("file", "web.raw", "sha512", "raw")),
        (
            upload(url="'https://[2001:db8::1]:8443/a.iso?build=7'", sha256=SHA256, disk_format="iso"),
            ("url", "https://[2001:db8::1]:8443/a.iso?build=7", "sha256", "iso"),
        ),
    ],
    ids=["file-sha256", "url-sha256", "file-sha512", "url-ipv6-port-query"],
)
def test_an_upload_source_loads_into_the_model(tmp_path: Path, source: str, expected: tuple[str, ...]) -> None:
    spec = loaded(tmp_path, image(source, "    properties: {os_type: linux}\n")).images[0]
    kind, where, algorithm, disk_format = expected
    assert spec.source.uploaded
    assert (spec.source.file if kind == "file" else spec.source.url) == where
    assert spec.source.digest is not None and spec.source.digest[0] == algorithm
    assert spec.source.disk_format == disk_format
    assert spec.source.instance is None and spec.source.image is None
    assert spec.locations["source.disk_format"].line == 4


def test_an_upper_case_digest_is_taken_and_the_model_gives_it_lower_case(tmp_path: Path) -> None:
    spec = loaded(tmp_path, image(upload(file="web.qcow2", sha256=SHA256.upper(), disk_format="qcow2"))).images[0]
    # The model keeps what was written; its digest and marker text (the one place that normalises) are lowercase.
    assert spec.source.digest == ("sha256", SHA256)
    assert spec.source.content == f"sha256:{SHA256}"


def test_a_block_upload_source_loads(tmp_path: Path) -> None:
    files = {
        "images.yaml": (
            "version: 1\nimages:\n  web:\n    source:\n      file: build/web.qcow2\n"
            f"      sha512: {SHA512}\n      disk_format: vmdk\n"
        )
    }
    spec = loaded(tmp_path, files).images[0]
    assert (spec.source.file, spec.source.sha512, spec.source.disk_format) == ("build/web.qcow2", SHA512, "vmdk")


# -- the source's shape (the schema, in words) -------------------------------------------------------------

SHAPE = [
    ("no kind", "{}", "source", "images.web.source: give exactly one of: instance, image, file, url"),
    (
        "upload fields without file or url",
        upload(sha256=SHA256, disk_format="qcow2"),
        "source",
        "images.web.source: give exactly one of: instance, image, file, url",
    ),
    (
        "running alone",
        upload(running="stop"),
        "source",
        "images.web.source: give exactly one of: instance, image, file, url",
    ),
    (
        "two kinds",
        upload(instance="web-golden-01", file="web.qcow2", sha256=SHA256, disk_format="qcow2"),
        "source",
        "images.web.source: instance and file are both given: give exactly one of: instance, image, file, url",
    ),
    (
        "file without disk_format",
        upload(file="web.qcow2", sha256=SHA256),
        "file",
        f"images.web.source.file: given without disk_format; {UPLOAD_NEEDS}",
    ),
    (
        "url without a digest",
        upload(url="https://a.example/w.qcow2", disk_format="qcow2"),
        "url",
        f"images.web.source.url: given without sha256 or sha512; {UPLOAD_NEEDS}",
    ),
    (
        "both digests",
        upload(file="web.qcow2", sha256=SHA256, sha512=SHA512, disk_format="qcow2"),
        "sha512",
        f"images.web.source.sha512: sha256 and sha512 are both given; {UPLOAD_NEEDS}",
    ),
    (
        "a digest without an upload",
        upload(instance="web-golden-01", sha256=SHA256),
        "sha256",
        "images.web.source.sha256: given without file or url; it belongs to an upload: give file: or url: with it, "
        "or take it out",
    ),
    (
        "disk_format without an upload",
        upload(image=IMAGE, disk_format="qcow2"),
        "disk_format",
        "images.web.source.disk_format: given without file or url; it belongs to an upload: give file: or url: "
        "with it, or take it out",
    ),
    (
        "running without an instance",
        upload(file="web.qcow2", sha256=SHA256, disk_format="qcow2", running="stop"),
        "running",
        "images.web.source.running: given without instance; running says what to do with a running instance: "
        "give instance:, or take running out",
    ),
    (
        "takeover without an image",
        upload(url="https://a.example/w.qcow2", sha256=SHA256, disk_format="qcow2", takeover="true"),
        "takeover",
        "images.web.source.takeover: given without image; takeover adopts an image that carries another set's "
        "markers: give image:, or take takeover out",
    ),
    (
        "a digest that is not hex",
        upload(file="web.qcow2", sha256="3a7bd3e2", disk_format="qcow2"),
        "3a7bd3e2",
        "images.web.source.sha256: '3a7bd3e2' is not a SHA-256 digest (64 hexadecimal characters, 0-9 and a-f)",
    ),
    (
        "a sha512 of sha256's length",
        upload(file="web.qcow2", sha512=SHA256, disk_format="qcow2"),
        SHA256,
        f"images.web.source.sha512: '{SHA256[:40]}...' is not a SHA-512 digest (128 hexadecimal characters, 0-9 "
        "and a-f)",
    ),
    (
        "an unknown disk format",
        upload(file="web.qcow2", sha256=SHA256, disk_format="qcow"),
        "qcow}",
        "images.web.source.disk_format: 'qcow' is not one of: qcow2, raw, vmdk, vhd, iso",
    ),
]


@pytest.mark.parametrize(("source", "at", "message"), [c[1:] for c in SHAPE], ids=[c[0] for c in SHAPE])
def test_a_malformed_source_is_reported_at_its_field(tmp_path: Path, source: str, at: str, message: str) -> None:
    files = image(source)
    # "source" points at the mapping (its brace), a field at its key, a value at the value.
    column = column_of(files, "{") if at == "source" else column_of(files, at)
    assert problems_of(tmp_path, files) == [f"images.yaml:4:{column}: {message}"]


def test_a_block_source_with_two_kinds_points_at_the_source(tmp_path: Path) -> None:
    files = {
        "images.yaml": (
            "version: 1\nimages:\n  web:\n    source:\n      instance: web-golden-01\n      url: https://a.example/w\n"
            f"      sha256: {SHA256}\n      disk_format: raw\n"
        )
    }
    [problem] = problems_of(tmp_path, files)
    assert problem.startswith("images.yaml:5:7: images.web.source: instance and url are both given")


# -- url ------------------------------------------------------------------------------------------

URLS = [
    ("plain http", "http://artifacts.example.com/w.qcow2", "plain http is refused: give an https address"),
    ("another scheme", "ftp://artifacts.example.com/w.qcow2", "'ftp' addresses are refused: give an https address"),
    ("no scheme", "artifacts.example.com/w.qcow2", "has no host: give a whole address, https://host/path"),
    ("no host", "https:///w.qcow2", "has no host: give a whole address, https://host/path"),
    ("a port zero", "https://a.example:0/w", "has an invalid port: a port is a number from 1 to 65535"),
    ("a file: url", "file:///etc/shadow", "'file' addresses are refused: give an https address (a file of the root"),
    ("a script", "javascript:alert(1)", "'javascript' addresses are refused: give an https address"),
    ("a port out of range", "https://a.example:99999/w", "has an invalid port: a port is a number from 1 to 65535"),
    ("a port that is no number", "https://a.example:web/w", "has an invalid port: a port is a number from 1 to 65535"),
    ("a fragment", "https://a.example/w.qcow2#top", "has a #fragment, which is never sent to the server"),
    ("an empty fragment", "https://a.example/w.qcow2#", "has a #fragment, which is never sent to the server"),
    ("a bracket that is no IPv6 address", "https://[a.example/w", "is not a URL that can be read"),
    ("a space", "https://a.example/web base.qcow2", "contains a space: write it percent-encoded (%20)"),
    ("too long", "https://a.example/" + "a" * 2040, "too long: 2058 characters, at most 2048 allowed"),
]


@pytest.mark.parametrize(("url", "words"), [c[1:] for c in URLS], ids=[c[0] for c in URLS])
def test_a_url_the_tool_cannot_fetch_is_reported_at_the_url(tmp_path: Path, url: str, words: str) -> None:
    files = image(url_source(f"'{url}'"))
    [problem] = problems_of(tmp_path, files)
    assert problem.startswith(f"images.yaml:4:{column_of(files, url) - 1}: images.web.source.url: {words}")


def test_plain_http_names_the_option_that_admits_it(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, image(url_source("http://127.0.0.1:8080/w.qcow2")))
    assert "--allow-http-loopback admits http" in problem
    assert "127.0.0.0/8, ::1 or localhost" in problem


@pytest.mark.parametrize(
    "secret_url", ["https://deploy:hunter2@artifacts.example.com/w", "https://hunter2@a.example/w"]
)
def test_credentials_in_a_url_are_refused_without_echoing_them(tmp_path: Path, secret_url: str) -> None:
    files = image(url_source(secret_url))
    [problem] = problems_of(tmp_path, files)
    assert problem.startswith(f"images.yaml:4:{column_of(files, 'https')}: images.web.source.url: holds credentials")
    assert "--url-header-env" in problem
    assert "hunter2" not in problem


def test_credentials_in_an_over_long_url_are_not_echoed_either(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, image(url_source("https://deploy:hunter2@a.example/" + "a" * 2100)))
    assert "too long" in problem and "hunter2" not in problem


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/w.qcow2", "http://127.5.6.7/w.qcow2", "http://[::1]:9000/w.qcow2", "http://LOCALHOST/w"],
)
def test_allow_http_loopback_admits_http_to_a_loopback_address(tmp_path: Path, url: str) -> None:
    spec = loaded(tmp_path, image(url_source(f"'{url}'")), allow_http_loopback=True).images[0]
    assert spec.source.url == url


@pytest.mark.parametrize(
    "url", ["http://artifacts.example.com/w", "http://10.0.0.1/w", "http://localhost.example.com/w", "http://[::2]/w"]
)
def test_allow_http_loopback_admits_no_other_http_address(tmp_path: Path, url: str) -> None:
    root = write_root(tmp_path, ROOT_CONFIG, image(url_source(f"'{url}'")))
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(root, allow_http_loopback=True)
    [problem] = [str(p) for p in caught.value.problems]
    assert "images.web.source.url: plain http is admitted by --allow-http-loopback only to a loopback address" in (
        problem
    )


def test_without_the_option_http_to_loopback_is_refused(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, image(url_source("http://localhost/w.qcow2")))
    assert "images.web.source.url: plain http is refused" in problem


# -- file -----------------------------------------------------------------------------------------

FILES = [
    ("absolute", "/srv/build/web.qcow2", f"an absolute path: {RELATIVE}"),
    ("a drive letter", "C:/build/web.qcow2", f"starts with a drive letter: {RELATIVE}"),
    ("a backslash", "build\\web.qcow2", "contains a backslash: separate folders with '/'"),
    ("climbs out", "build/../../web.qcow2", f"climbs out with '..': {RELATIVE}"),
    ("only ..", "..", f"climbs out with '..': {RELATIVE}"),
    ("an empty component", "build//web.qcow2", "has an empty component ('//', or a '/' at the end)"),
    ("a folder", "build/", "has an empty component ('//', or a '/' at the end)"),
    ("the root itself", ".", f"names the root itself, not a file: {RELATIVE}"),
    ("the root, spelled twice", "./.", f"names the root itself, not a file: {RELATIVE}"),
]


@pytest.mark.parametrize(("path", "words"), [c[1:] for c in FILES], ids=[c[0] for c in FILES])
def test_a_file_outside_the_lookup_folders_is_reported_at_the_file(tmp_path: Path, path: str, words: str) -> None:
    files = image(file_source(f"'{path}'"))
    [problem] = problems_of(tmp_path, files)
    assert problem.startswith(f"images.yaml:4:{column_of(files, path) - 1}: images.web.source.file: {words}")


def test_a_file_path_over_4096_characters_is_too_long(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, image(file_source("a" * 4097)))
    assert "images.web.source.file: too long: 4097 characters, at most 4096 allowed" in problem


def test_a_control_character_in_a_file_path_is_refused(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, image(file_source('"build/web\\0.qcow2"')))
    assert "images.web.source.file: the value contains \\x00 (control)" in problem


def test_a_file_path_with_dots_inside_names_is_fine(tmp_path: Path) -> None:
    spec = loaded(tmp_path, image(file_source("./build/web..v2/.qcow2"))).images[0]
    assert spec.source.file == "./build/web..v2/.qcow2"


# -- names ----------------------------------------------------------------------------------------


def test_an_upload_creates_its_image_so_its_name_leaves_room_for_the_temporary_token(tmp_path: Path) -> None:
    files = image(file_source("web.qcow2"), f"    name: {'n' * 236}\n")
    assert problems_of(tmp_path, files) == [
        "images.yaml:5:11: images.web.name: 236 characters; the name of an image the tool makes is at most 235 "
        "(it is created under the name plus a 20-character temporary token)"
    ]


# -- families -------------------------------------------------------------------------------------

FAMILY = f"""version: 1
families:
  web:
    versions: ["2026-11", "2026-12"]
    keep: 1
    image:
      source: {{file: "build/{{family}}-{{version}}.qcow2", sha256: {SHA256}, disk_format: qcow2}}
      name: web-{{version}}
"""


def test_a_family_file_source_is_built_per_version_with_the_version_in_the_path(tmp_path: Path) -> None:
    [spec] = loaded(tmp_path, {"families.yaml": FAMILY}).images
    assert spec.key == "web-2026-12"
    assert spec.source.file == "build/web-2026-12.qcow2"
    assert spec.source.content == f"sha256:{SHA256}"
    assert spec.locations["source.file"].line == 7


def test_a_version_entry_gives_its_own_upload_source(tmp_path: Path) -> None:
    text = FAMILY.replace(
        'versions: ["2026-11", "2026-12"]',
        f'versions: ["2026-11", {{version: "2026-12", source: {{url: "https://a.example/{{version}}.raw", '
        f"sha512: {SHA512}, disk_format: raw}}}}]",
    )
    [spec] = loaded(tmp_path, {"families.yaml": text}).images
    assert (spec.source.url, spec.source.disk_format) == ("https://a.example/2026-12.raw", "raw")
    assert spec.source.digest == ("sha512", SHA512)
    assert spec.locations["source.url"].line == 4


def test_a_family_url_is_checked_once_substituted(tmp_path: Path) -> None:
    text = FAMILY.replace('file: "build/{family}-{version}.qcow2"', 'url: "http://a.example/{version}.qcow2"')
    [problem] = problems_of(tmp_path, {"families.yaml": text})
    assert problem.startswith("families.yaml:7:21: families.web.image.source.url: plain http is refused")


def test_an_unknown_placeholder_in_a_family_file_is_reported(tmp_path: Path) -> None:
    text = FAMILY.replace("{family}-{version}", "{family}-{ver}")
    [problem] = problems_of(tmp_path, {"families.yaml": text})
    assert problem.startswith(
        "families.yaml:7:22: families.web.image.source.file: unknown placeholder '{ver}': only {version} and "
        "{family} are replaced"
    )


def test_a_family_template_refuses_takeover(tmp_path: Path) -> None:
    text = FAMILY.replace("disk_format: qcow2}", "disk_format: qcow2, takeover: true}")
    [problem] = problems_of(tmp_path, {"families.yaml": text})
    assert "families.web.image.source.takeover: not allowed here: takeover goes with image:" in problem


# -- the hostile corpus (tests/bad_input/upload-*: run by tests/test_hostile_input.py through the CLI too) ---

CORPUS = Path(__file__).resolve().parents[1] / "bad_input"
HOSTILE = {
    "upload-url-hostile": [
        (6, "images.creds.source.url: holds credentials"),
        (8, "images.metadata.source.url: plain http is refused"),
        (10, "images.local-file.source.url: 'file' addresses are refused"),
        (12, "images.script.source.url: 'javascript' addresses are refused"),
        (14, "images.broken-bracket.source.url: is not a URL that can be read"),
        (16, "images.port.source.url: has an invalid port"),
        (18, "images.fullwidth-at.source.url: is not a URL that can be read"),
    ],
    "upload-file-escape": [
        (6, "images.absolute.source.file: an absolute path"),
        (8, "images.climbing.source.file: climbs out with '..'"),
        (10, "images.windows.source.file: starts with a drive letter"),
        (12, "images.nul.source.file: the value contains \\x00 (control)"),
        (17, "families.up.image.source.file: climbs out with '..'"),  # once {version} (..) is replaced
    ],
    "upload-digest-hostile": [
        (7, "families.web.image.source.sha256: '{version}' is not a SHA-256 digest"),
        (10, "images.number.source.sha256: expected a string, got an integer"),
        (12, "images.short.source.sha512: '3a7bd3e2360a3d29eea436fcfb7e44c735d117c4...' is not a SHA-512 digest"),
        (14, "images.both.source.sha512: sha256 and sha512 are both given"),
        (16, "images.format.source.disk_format: 'qcow2; rm -rf /' is not one of: qcow2, raw, vmdk, vhd, iso"),
    ],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_each_hostile_upload_is_refused_at_its_line_and_no_password_leaks(case: str) -> None:
    found = problems_loading(CORPUS / case)
    located = [
        (int(m.group(1)), m.group(2)) for m in (re.match(r"images\.yaml:(\d+):\d+: (.*)", p) for p in found) if m
    ]
    assert len(located) == len(found) == len(HOSTILE[case])
    for (line, message), (want_line, words) in zip(located, HOSTILE[case], strict=True):
        assert line == want_line and message.startswith(words), (line, message)
    assert not any("s3cr3t" in p for p in found)


# -- the schema editors complete from ------------------------------------------------------------------


def test_the_schema_examples_of_a_source_are_sources_it_takes() -> None:
    schema = load_schema("manifest")
    validator = jsonschema.Draft202012Validator(schema)
    image_examples = schema["$defs"]["image"]["properties"]["source"]["examples"]
    family_examples = schema["$defs"]["family_source"]["examples"]
    assert any("file" in e for e in image_examples) and any("url" in e for e in image_examples)
    assert any(e.get("file", "").endswith(".qcow2") and e.get("disk_format") == "qcow2" for e in image_examples)
    for example in image_examples:
        assert validator.is_valid({"version": 1, "images": {"web": {"source": example}}}), example
    for example in family_examples:
        manifest = {"version": 1, "families": {"web": {"versions": ["1"], "image": {"source": example}}}}
        assert validator.is_valid(manifest), example
