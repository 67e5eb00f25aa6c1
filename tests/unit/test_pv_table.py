"""docs/pv-table.md is what ``tcstation pv-table`` generates from the contract and the devices."""

from __future__ import annotations

from tcstation import pv_table
from tcstation.instruments import lakeshore336


def test_the_committed_pv_table_is_current(capsys):
    status = pv_table.main(["--check"])
    assert status == 0, capsys.readouterr().out[:3000]


def test_the_table_shows_every_contract_pv_and_the_device_signals():
    text = pv_table.render()
    for signal in lakeshore336.SIGNALS:
        assert f"| `{signal.suffix}` |" in text
    assert "| `cryostat_setpoint` | read | `OUT1:SP` | yes | `SETP 1,<K>` / `SETP? 1` |" in text
    assert "| `transport_bias_current` | read | `Curr` | yes | `:SOUR:CURR <A>`" in text


def test_the_check_fails_on_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "pv-table.md"
    stale.write_text(pv_table.render().replace("SETP 1,<K>", "SETP 1,<kelvin>"))
    monkeypatch.setattr(pv_table, "PV_TABLE_FILE", stale)
    assert pv_table.main(["--check"]) == 1
    assert "SETP 1,<kelvin>" in capsys.readouterr().out
