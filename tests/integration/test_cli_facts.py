"""``epos-bridge facts``: the installer sets what the POS has no column for (a table's covers,
the venue's VAT number) without raw SQL, and Dojo sees it at once through the mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from epos_bridge.cli import main
from epos_bridge.testing.contract_suite import STANDARD_VENUE, ok
from tests.helpers.contract import rpc_over
from tests.helpers.floreant import FloreantTill, floreant
from tests.helpers.pos import sqlmap_pos


@pytest.fixture
def till(tmp_path: Path) -> FloreantTill:
    till = FloreantTill(tmp_path / "floreant.db")
    till.seed(STANDARD_VENUE)
    return till


@pytest.fixture
def floreant_file(till: FloreantTill) -> Path:
    return till.path


async def test_a_fact_set_from_the_cli_is_what_dojo_reads(
    till: FloreantTill, floreant_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["facts", "set", str(floreant_file), "--mapping", "floreant", "venue", "1", "vat_number", "GB999"]) == 0
    assert capsys.readouterr().out.strip() == "kept venue 1 vat_number = 'GB999'"
    adapter = sqlmap_pos(floreant_file, floreant())
    try:
        bill = ok(await rpc_over(adapter)("GetOrderBillByIdV1", {"orderId": till.add_open_order("T1", 500, "GBP")}))
        assert any(
            (line.get("taxNumber") or {}).get("number") == "GB999"
            for line in bill["footer"]["lines"] + bill["header"]["lines"]
        )
    finally:
        await adapter.close()

    assert main(["facts", "list", str(floreant_file), "--mapping", "floreant", "--kind", "venue"]) == 0
    out = capsys.readouterr().out
    assert "venue 1 vat_number = 'GB999'" in out
    assert "reads: venue.postcode, venue.vat_number" in out

    assert (
        main(["facts", "set", str(floreant_file), "--mapping", "floreant", "venue", "1", "vat_number", "--clear"]) == 0
    )
    assert "forgot venue 1 vat_number" in capsys.readouterr().out


def test_a_fact_the_mapping_never_reads_is_kept_with_a_warning(
    floreant_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["facts", "set", str(floreant_file), "--mapping", "floreant", "table", "1", "colour", "red"]) == 0
    assert "never reads table.colour" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["facts", "set", "{db}", "--mapping", "floreant", "planet", "1", "x", "y"], "kind 'planet' is not one of"),
        (["facts", "set", "{db}", "--mapping", "floreant", "venue", "1", "vat_number"], "give a value, or --clear"),
        (["facts", "list", "{missing}", "--mapping", "floreant"], "does not exist"),
        (["facts", "list", "{db}", "--mapping", "nosuchmapping"], "nosuchmapping"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(
    floreant_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    filled = [a.format(db=floreant_file, missing=tmp_path / "nope.db") for a in argv]
    assert main(filled) in (1, 2)
    assert said in capsys.readouterr().err
