"""Seeds say who uses an image (issue 22): `servers[].image` (an id or a name the project may use, `""` for a
volume root) and `volumes[]` made from an image, attached or not. Unknown references are seed errors at
file:line:column naming the server or volume; the simulator then lists the users as Nova and Cinder do."""

from __future__ import annotations

import re
import textwrap

import pytest
from support import OWNER, OWNER_USER, Api

from reconciler.errors import SeedError
from reconciler.simulator.seed import load_seed, state_from_seed

P1 = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
P2 = "8989447062e04a818baf9e073fd04fa7"
BASE = "20000000-0000-4000-8000-000000000001"
OTHER = "20000000-0000-4000-8000-000000000002"
PUBLIC = "20000000-0000-4000-8000-000000000003"
WEB = "30000000-0000-4000-8000-000000000001"
VOLUME = "40000000-0000-4000-8000-000000000001"

HEAD = f"""\
regions: [KR1, JP1]
projects:
  - id: {P1}
    users: [{{username: dev@example.com, api_password: local-only}}]
  - id: {P2}
images:
  - {{id: {BASE}, project: {P1}, region: KR1, name: base, properties: {{os_type: linux}}}}
  - {{id: {OTHER}, project: {P2}, region: KR1, name: theirs}}
  - {{id: {PUBLIC}, project: {P2}, region: KR1, name: ubuntu, visibility: public}}
"""


def write(tmp_path, text: str):
    path = tmp_path / "seed.yaml"
    path.write_text(HEAD + textwrap.dedent(text))
    return path


def at(text: str, marker: str, key: str, *, of_key: bool = False) -> str:
    """`seed.yaml:LINE:COLUMN` of `key`'s value (or of the key itself) on the seed line holding `marker`."""
    for number, line in enumerate((HEAD + textwrap.dedent(text)).splitlines(), 1):
        if marker in line:
            found = re.search(rf"[{{ ]({key}): *", line)
            assert found is not None, (key, line)
            return f"seed.yaml:{number}:{(found.start(1) if of_key else found.end()) + 1}"
    raise AssertionError(marker)


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(SeedError) as caught:
        load_seed(write(tmp_path, text))
    return [line.strip().replace(f"{tmp_path}/", "") for line in str(caught.value).splitlines()[1:]]


def state(tmp_path, text: str) -> dict:
    return state_from_seed(load_seed(write(tmp_path, text)))


def server_named(doc: dict, name: str) -> dict:
    return next(s for s in doc["servers"].values() if s["name"] == name)


# -- validation -----------------------------------------------------------------------------------------


def test_an_unknown_server_image_is_a_seed_error_naming_the_server(tmp_path):
    text = f"""\
        servers:
          - {{project: {P1}, region: KR1, name: web-01, flavor: u2.c2m4, os_type: linux, image: nope}}
          - {{project: {P1}, region: KR1, name: web-02, flavor: u2.c2m4, os_type: linux, image: theirs}}
          - {{project: {P1}, region: JP1, name: web-03, flavor: u2.c2m4, os_type: linux, image: {BASE}}}
        """
    found = problems(tmp_path, text)
    assert len(found) == 3, found
    assert found[0].startswith(f"{at(text, 'web-01', 'image')}: servers[0].image: server 'web-01': no image 'nope'")
    # Another project's private image, and an image of another region, are not the project's to boot from.
    assert found[1].startswith(f"{at(text, 'web-02', 'image')}: servers[1].image: server 'web-02': no image 'theirs'")
    assert found[2].startswith(f"{at(text, 'web-03', 'image')}: servers[2].image: server 'web-03': no image '{BASE}'")
    assert "in region JP1" in found[2]


def test_an_ambiguous_image_name_asks_for_the_id(tmp_path):
    text = f"""\
        servers:
          - {{project: {P1}, region: KR1, name: web-01, flavor: u2.c2m4, os_type: linux, image: base}}
        """
    seed = HEAD.replace("images:\n", f"images:\n  - {{project: {P1}, region: KR1, name: base}}\n") + textwrap.dedent(
        text
    )
    (tmp_path / "seed.yaml").write_text(seed)
    with pytest.raises(SeedError, match=r"servers\[0\]\.image: server 'web-01': 2 images of region KR1 are named"):
        load_seed(tmp_path / "seed.yaml")


def test_image_and_base_image_must_name_the_same_image(tmp_path):
    text = f"""\
        servers:
          - {{project: {P1}, region: KR1, name: web-01, flavor: u2.c2m4, os_type: linux, image: base,
              base_image: ubuntu}}
        """
    assert problems(tmp_path, text) == [
        f"{at(text, 'base_image', 'base_image')}: servers[0].base_image: server 'web-01': base_image 'ubuntu' is not the name of its "
        "image 'base' ('base'); give one of them, or both naming the same image"
    ]


def test_an_empty_image_is_a_volume_root_and_cannot_be_local(tmp_path):
    text = f"""\
        servers:
          - {{project: {P1}, region: KR1, name: web-01, flavor: u2.c2m4, os_type: linux, image: "", root: local}}
        """
    assert problems(tmp_path, text) == [
        f"{at(text, 'web-01', 'image')}: servers[0].image: server 'web-01': image \"\" means a volume root, not root: local"
    ]


VOLUME_REFERENCES = f"""\
servers:
  - {{project: {P1}, region: KR1, name: web-01, flavor: u2.c2m4, os_type: linux}}
  - {{project: {P1}, region: KR1, name: twin, flavor: u2.c2m4, os_type: linux}}
  - {{project: {P1}, region: KR1, name: twin, flavor: u2.c2m4, os_type: linux}}
volumes:
  - {{project: {P1}, region: KR1, name: data-01, image: theirs, attached_to: web-99}}
  - {{project: {P1}, region: KR1, name: data-02, attached_to: twin}}
  - {{project: {P1}, region: JP1, name: data-03, attached_to: web-01}}
"""


def test_volume_shapes_are_checked_first(tmp_path):
    text = VOLUME_REFERENCES + f"  - {{project: {P1}, region: KR1, name: d, size_gb: 0, colour: red}}\n"
    assert problems(tmp_path, text) == [
        f"{at(text, 'colour', 'size_gb')}: volumes[3].size_gb: 0 is less than the minimum of 1",
        f"{at(text, 'colour', 'colour', of_key=True)}: volumes[3].colour: unknown key",
    ]


def test_volume_references_are_checked(tmp_path):
    found = problems(tmp_path, VOLUME_REFERENCES)
    assert len(found) == 4, found
    text = VOLUME_REFERENCES
    assert found[0].startswith(
        f"{at(text, 'data-01', 'image')}: volumes[0].image: volume 'data-01': no image 'theirs'"
    ), found
    assert found[1].startswith(
        f"{at(text, 'data-01', 'attached_to')}: volumes[0].attached_to: volume 'data-01': no server 'web-99'"
    ), found
    assert found[2].startswith(
        f"{at(text, 'data-02', 'attached_to')}: volumes[1].attached_to: volume 'data-02': 2 servers of project"
    ), found
    assert found[3].startswith(
        f"{at(text, 'data-03', 'attached_to')}: volumes[2].attached_to: volume 'data-03': no server 'web-01'"
    ), found


def test_volume_ids_are_unique_with_server_and_image_ids(tmp_path):
    text = f"""\
        volumes:
          - {{id: {BASE}, project: {P1}, region: KR1, name: data-01}}
        """
    assert problems(tmp_path, text) == [f"{at(text, 'data-01', 'id')}: volumes[0].id: duplicate id"]


# -- the state it builds ----------------------------------------------------------------------------------


def test_server_image_by_name_or_id_sets_the_image_and_the_base_image_name(tmp_path):
    doc = state(
        tmp_path,
        f"""\
        servers:
          - {{project: {P1}, region: KR1, name: by-name, flavor: u2.c2m4, os_type: linux, image: base}}
          - {{project: {P1}, region: KR1, name: by-id, flavor: u2.c2m4, os_type: linux, image: {PUBLIC}}}
          - {{project: {P1}, region: KR1, name: both, flavor: u2.c2m4, os_type: linux, image: base, base_image: base}}
        """,
    )
    assert server_named(doc, "by-name")["base_image_id"] == BASE
    assert server_named(doc, "by-name")["metadata"]["image_name"] == "base"
    assert server_named(doc, "by-id")["base_image_id"] == PUBLIC
    assert server_named(doc, "by-id")["base_image"] == "ubuntu"
    assert server_named(doc, "both")["base_image_id"] == BASE


def test_an_empty_image_makes_a_volume_root_whose_boot_volume_comes_from_base_image(tmp_path):
    doc = state(
        tmp_path,
        f"""\
        servers:
          - {{project: {P1}, region: KR1, name: bfv, flavor: u2.c2m4, os_type: linux, image: "", base_image: base}}
          - {{project: {P1}, region: KR1, name: blank, flavor: m2.c4m8, os_type: linux, image: ""}}
          - {{project: {P1}, region: KR1, name: copied, flavor: m2.c4m8, os_type: linux, image: base}}
        """,
    )
    bfv, blank, copied = (server_named(doc, n) for n in ("bfv", "blank", "copied"))
    assert bfv["root"] == "volume" and doc["volumes"][bfv["root_volume_id"]]["image_id"] == BASE
    assert blank["root"] == "volume" and doc["volumes"][blank["root_volume_id"]]["image_id"] is None
    assert copied["root"] == "volume" and doc["volumes"][copied["root_volume_id"]]["image_id"] == BASE


def test_seeded_volumes_attach_on_the_next_free_device_or_stay_available(tmp_path):
    doc = state(
        tmp_path,
        f"""\
        servers:
          - {{id: {WEB}, project: {P1}, region: KR1, name: web-01, flavor: m2.c4m8, os_type: linux}}
        volumes:
          - {{id: {VOLUME}, project: {P1}, region: KR1, name: data-01, image: base, attached_to: web-01}}
          - {{project: {P1}, region: KR1, name: data-02, attached_to: {WEB}, size_gb: 50}}
          - {{project: {P1}, region: KR1, name: spare, image: ubuntu}}
        """,
    )
    volumes = {v["name"]: v for v in doc["volumes"].values() if v["name"]}
    assert volumes["data-01"]["id"] == VOLUME
    assert (volumes["data-01"]["status"], volumes["data-01"]["device"]) == ("in-use", "/dev/vdb")
    assert (volumes["data-02"]["device"], volumes["data-02"]["size"], volumes["data-02"]["image_id"]) == (
        "/dev/vdc",
        50,
        None,
    )
    assert volumes["data-02"]["bootable"] == "false"
    assert (volumes["spare"]["status"], volumes["spare"]["attached_to"], volumes["spare"]["image_id"]) == (
        "available",
        None,
        PUBLIC,
    )


def test_the_listings_show_the_seeded_users(tmp_path, make_sim):
    seed = load_seed(
        write(
            tmp_path,
            f"""\
            servers:
              - {{id: {WEB}, project: {P1}, region: KR1, name: local, flavor: u2.c2m4, os_type: linux, image: base}}
              - {{project: {P1}, region: KR1, name: bfv, flavor: m2.c4m8, os_type: linux, image: base}}
            volumes:
              - {{id: {VOLUME}, project: {P1}, region: KR1, name: spare, image: base}}
            """,
        )
    )
    api = Api(make_sim(seed), *OWNER_USER, OWNER)
    servers = {s["name"]: s for s in api.compute("GET", "/servers/detail").json()["servers"]}
    assert servers["local"]["image"]["id"] == BASE
    assert servers["bfv"]["image"] == ""
    volumes = {v["id"]: v for v in api.volume("GET", "/volumes/detail").json()["volumes"]}
    assert volumes[VOLUME]["status"] == "available" and volumes[VOLUME]["attachments"] == []
    assert volumes[VOLUME]["volume_image_metadata"]["image_id"] == BASE
    assert volumes[VOLUME]["name"] == "spare"
    root = next(v for v in volumes.values() if v["attachments"])
    assert root["volume_image_metadata"]["image_id"] == BASE
    assert root["attachments"][0]["server_id"] == servers["bfv"]["id"]
