"""Windows preparation advice (issue 27): the date read from the instance's base image name chooses the
Sysprep procedure of NHN's guide (ToastSysprep from 2020-08-18 on, sysprep.exe with Cloudbase-Init's
Unattend.xml before, both when the date cannot be read), and the same reading decides
`windows_pre_20190528`. Pure: hand-made snapshots, no simulator."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import date
from pathlib import Path
from types import MappingProxyType

import pytest

from reconciler.cloud.records import Server
from reconciler.plan import Target
from reconciler.plan_codec import plan_from_json
from reconciler.planner import build_plan
from reconciler.planner.imaging import base_image_date, sysprep_advice
from reconciler.render.markdown import render_markdown
from reconciler.schemas import validator
from reconciler.snapshot import Snapshot
from reconciler.validate import load_desired_state

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
TARGET = Target("simulator", PROJECT, "loopback", ("KR1",), ".reconciler/sim-state.json")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Windows 2019 STD (2020.08.18) KO", date(2020, 8, 18)),
        ("Windows 2016 STD (2019.05.28) KO", date(2019, 5, 28)),
        ("Windows 2022 STD (2023.11.21) EN", date(2023, 11, 21)),
        ("Windows 2012 R2 STD (2018.12.27)", date(2018, 12, 27)),
        ("Windows 2019 STD with MS-SQL 2019 Standard (2021.02.23) KO", date(2021, 2, 23)),
    ],
)
def test_the_date_is_read_from_the_names_nhn_gives_its_base_images(name, expected):
    assert base_image_date(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        "win-golden-2024 (customized)",  # a private image the instance was made from: no date
        "Windows 2019 STD 2020.08.18 KO",  # not in parentheses: not the form NHN writes
        "Windows 2019 STD (2020-08-18) KO",
        "Windows 2019 STD (2020.13.01) KO",  # no 13th month
        "Windows 2019 STD (2019.02.30) KO",  # no 30 February
        "Ubuntu Server 22.04 LTS",
    ],
)
def test_a_name_without_a_real_day_in_nhn_form_has_no_date(name):
    assert base_image_date(name) is None


@pytest.mark.parametrize(
    ("base", "variant"),
    [
        (date(2019, 3, 26), "unattend_xml"),
        (date(2020, 8, 17), "unattend_xml"),  # the day before the cut-off
        (date(2020, 8, 18), "toast_sysprep"),  # the cut-off day itself: "2020-08-18 or later"
        (date(2024, 1, 16), "toast_sysprep"),
        (None, "either"),
    ],
)
def test_the_variant_follows_the_base_images_date(base, variant):
    assert sysprep_advice("win-01", base, running=False).variant == variant


def test_toast_sysprep_runs_in_an_administrator_powershell_and_shuts_the_instance_down():
    advice = sysprep_advice("win-01", date(2020, 8, 18), running=False)
    assert "ToastSysprep in an administrator PowerShell on win-01 (base image of 2020-08-18)" in advice.summary
    assert "Unattend.xml" not in advice.summary + " ".join(advice.steps)
    assert any("shuts itself down" in step for step in advice.steps)


def test_an_older_base_image_runs_sysprep_exe_with_cloudbase_inits_unattend_xml():
    advice = sysprep_advice("win-01", date(2020, 8, 17), running=False)
    assert "sysprep.exe with Cloudbase-Init's Unattend.xml on win-01 (base image of 2020-08-17" in advice.summary
    assert r"cd C:\Program Files\Cloudbase Solutions\Cloudbase-Init\conf" in advice.steps
    command = r"C:\Windows\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown /unattend:Unattend.xml"
    assert any(command in step for step in advice.steps)
    assert "ToastSysprep" not in advice.summary + " ".join(advice.steps)


def test_an_unreadable_date_names_both_procedures_briefly():
    advice = sysprep_advice("win-01", None, running=False)
    assert "ToastSysprep" in advice.summary and "Unattend.xml" in advice.summary
    assert "no date in its base image's name" in advice.summary
    said = " ".join(advice.steps)
    assert "ToastSysprep" in said and "/unattend:Unattend.xml" in said


@pytest.mark.parametrize("base", [date(2019, 3, 26), date(2020, 8, 18), None])
def test_every_variant_says_the_password_is_blanked_and_names_the_reset_option(base):
    advice = sysprep_advice("win-01", base, running=False)
    assert "Sysprep blanks the Windows password" in advice.summary
    assert "resets it at image creation" in advice.summary
    assert any("image-creation option that resets it" in step for step in advice.steps)


@pytest.mark.parametrize("base", [date(2019, 3, 26), date(2020, 8, 18), None])
def test_the_text_line_stays_one_line(base):
    assert "\n" not in sysprep_advice("win-01", base, running=True).summary


def test_a_running_instance_is_told_that_sysprep_stops_it_and_the_plan_must_be_made_again():
    running = sysprep_advice("win-01", date(2020, 8, 18), running=True).steps
    stopped = sysprep_advice("win-01", date(2020, 8, 18), running=False).steps
    assert running[:-1] == stopped
    assert "plan again" in running[-1]


# -- through the planner ------------------------------------------------------------------------------


def desired(tmp_path: Path, running: str = "allow"):
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: web\ncloud:\n  kind: nhn\n  project: {PROJECT}\ndefaults:\n  region: KR1\n"
    )
    manifest = f"""\
        win:
          source: {{instance: win-01, running: {running}}}
        """
    (tmp_path / "m.yaml").write_text("version: 1\nimages:\n" + textwrap.indent(textwrap.dedent(manifest), "  "))
    return load_desired_state(tmp_path)


def windows_server(base_image: str | None, status: str = "ACTIVE") -> Server:
    metadata = {"os_type": "windows", **({"image_name": base_image} if base_image is not None else {})}
    return Server("KR1", "s1", "win-01", status, None, "f", "m2.c4m8", "volume", "v1", MappingProxyType(metadata))


def snapshot_with(server: Server) -> Snapshot:
    empty = Snapshot(
        project=PROJECT, regions=("KR1",), catalog_regions=("KR1",), images=MappingProxyType({"KR1": ()}),
        members=MappingProxyType({}), servers=MappingProxyType({}), foreign=MappingProxyType({}),
    )  # fmt: skip
    return dataclasses.replace(empty, servers=MappingProxyType({("KR1", server.name): server}))


def warnings_of(tmp_path: Path, server: Server, running: str = "allow") -> dict[str, str]:
    plan = build_plan(desired(tmp_path, running), snapshot_with(server), TARGET)
    return {w.code: w.message for w in plan.warnings}


@pytest.mark.parametrize(
    ("base_image", "procedure"),
    [
        ("Windows 2019 STD (2020.08.18) KO", "ToastSysprep in an administrator PowerShell"),
        ("Windows 2019 STD (2020.08.17) KO", "sysprep.exe with Cloudbase-Init's Unattend.xml on"),
        ("win-golden-2024 (customized)", "ToastSysprep if its base image is of 2020-08-18 or later, else"),
        (None, "ToastSysprep if its base image is of 2020-08-18 or later, else"),
    ],
)
@pytest.mark.parametrize("status", ["ACTIVE", "SHUTOFF"])
def test_the_windows_sysprep_warning_names_the_procedure_of_the_instances_base_image(
    tmp_path, base_image, procedure, status
):
    message = warnings_of(tmp_path, windows_server(base_image, status))["windows_sysprep"]
    assert procedure in message and "Sysprep blanks the Windows password" in message


@pytest.mark.parametrize(
    ("base_image", "warned"),
    [
        ("Windows 2016 STD (2019.05.28) KO", True),  # "2019-05-28 or earlier"
        ("Windows 2016 STD (2019.05.29) KO", False),
        # Not a real day: unreadable, as for windows_sysprep (a comparison of the digits as text said
        # it was before 2019-05-28).
        ("Windows 2016 STD (2019.02.30) KO", False),
        ("win-golden-2024 (customized)", False),
    ],
)
def test_windows_pre_20190528_reads_the_date_as_windows_sysprep_does(tmp_path, base_image, warned):
    found = warnings_of(tmp_path, windows_server(base_image))
    assert ("windows_pre_20190528" in found) is warned
    if base_image.endswith("(2019.02.30) KO"):
        assert "ToastSysprep if its base image is of 2020-08-18 or later, else" in found["windows_sysprep"]


def test_windows_pre_20190528_is_only_for_an_instance_imaged_running(tmp_path):
    old = "Windows 2016 STD (2019.05.28) KO"
    assert "windows_pre_20190528" not in warnings_of(tmp_path, windows_server(old, "SHUTOFF"))
    assert "windows_pre_20190528" not in warnings_of(tmp_path, windows_server(old), running="stop")


# -- the detail the one-line message leaves out ---------------------------------------------------------


def test_the_json_warning_carries_the_variant_the_date_and_the_steps(tmp_path):
    server = windows_server("Windows 2019 STD (2020.08.17) KO")
    plan = build_plan(desired(tmp_path), snapshot_with(server), TARGET)
    (warning,) = (w for w in plan.to_json()["warnings"] if w["code"] == "windows_sysprep")
    assert warning["details"] == {
        "base_image": "Windows 2019 STD (2020.08.17) KO",
        "base_image_date": "2020-08-17",
        "steps": list(sysprep_advice("win-01", date(2020, 8, 17), running=True).steps),
        "variant": "unattend_xml",
    }
    others = [w for w in plan.to_json()["warnings"] if w["code"] != "windows_sysprep"]
    assert others and all("details" not in w for w in others), "a warning without details is written as before"


def test_the_details_read_back_and_fit_the_plan_schema(tmp_path):
    document = build_plan(desired(tmp_path), snapshot_with(windows_server(None)), TARGET).to_json()
    assert not list(validator("plan").iter_errors(document))
    assert plan_from_json(document).to_json() == document


def test_markdown_lists_the_steps_under_the_warning(tmp_path):
    plan = build_plan(desired(tmp_path), snapshot_with(windows_server("Windows 2019 STD (2020.08.18) KO")), TARGET)
    markdown = render_markdown(plan.to_json())
    assert "\n  - run ToastSysprep: the instance shuts itself down when Sysprep finishes\n" in markdown
