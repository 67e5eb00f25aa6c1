"""The committed existing_plans_and_devices.yaml must match what the code gives the queueserver."""

import shutil

import pytest
import yaml

from tcstation.queueserver import EXISTING_PLANS_FILE, generate_plan_list, stale_difference

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan-list") / EXISTING_PLANS_FILE.name
    generate_plan_list(path)
    return path


def test_committed_plan_list_is_current(generated):
    difference = stale_difference(generated, EXISTING_PLANS_FILE)
    assert difference == "", ("existing_plans_and_devices.yaml is stale: run "
                              "`.venv/bin/tcstation qserver-yaml`\n" + difference[:3000])


def test_a_changed_plan_list_is_reported_stale(generated, tmp_path):
    committed = tmp_path / "committed.yaml"
    shutil.copyfile(generated, committed)
    listing = yaml.safe_load(committed.read_text())
    del listing["existing_plans"]["transport_grid"]
    committed.write_text(yaml.safe_dump(listing))
    assert "transport_grid" in stale_difference(generated, committed)


def test_the_plan_list_has_the_station_plans_without_the_station(generated):
    listing = yaml.safe_load(generated.read_text())
    ramp = listing["existing_plans"]["transport_ramp"]
    names = [parameter["name"] for parameter in ramp["parameters"]]
    assert names[:3] == ["start", "stop", "rate"] and "station" not in names
    assert set(listing["existing_devices"]) == {"cryostat", "susceptometer", "transport",
                                                "bias_source", "environment"}
