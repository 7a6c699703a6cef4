import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claims.cli import app
from claims.util.errors import InputError
from claims.util.paths import SEEDS_DIR
from claims.corpus.segment import segment_file, segment_text

SEEDS = sorted(SEEDS_DIR.glob("*.txt"))


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_offsets_reproduce_text_exactly(path: Path):
    raw = path.read_text(encoding="utf-8")
    units = segment_file(path)
    assert units, "no units"
    for unit in units:
        assert raw[unit.start:unit.end] == unit.text
        assert unit.text == unit.text.strip() and unit.text
        assert unit.id == f"{path.stem}:{unit.index}"
    starts = [u.start for u in units]
    assert starts == sorted(starts), "units out of order"


def test_offsets_hold_with_crlf_and_non_ascii():
    raw = "Bamako \u2014 JNIM said it \u201cseized\u201d the base.  The army denied it.\r\n\r\nADVERTISEMENT\r\n"
    units = segment_text(raw, "x")
    assert [u.text for u in units] == [
        "Bamako \u2014 JNIM said it \u201cseized\u201d the base.", "The army denied it.", "ADVERTISEMENT"]
    assert all(raw[u.start:u.end] == u.text for u in units)


def test_furniture_lines_stay_separate_units():
    units = segment_file(SEEDS_DIR / "000_6d991916dd06222c.txt")
    texts = [u.text for u in units]
    assert "ADVERTISEMENT" in texts
    assert "Space News from SpaceDaily.com" in texts
    # a quotation of three sentences stays one unit with its speaker
    assert any(t.startswith('"The soldiers have abandoned') and t.endswith("the person said.") for t in texts)


def test_segmentation_is_stable():
    a = segment_file(SEEDS[1])
    b = segment_file(SEEDS[1])
    assert a == b


def test_invalid_utf8_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nsecond \xff line\n")
    with pytest.raises(InputError) as e:
        segment_file(bad)
    assert "bad.txt:2" in str(e.value)


def test_segment_cli_writes_units(tmp_path: Path):
    out = tmp_path / "units.jsonl"
    result = CliRunner().invoke(app, ["segment", str(SEEDS[0]), str(SEEDS[2]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(segment_file(SEEDS[0])) + len(segment_file(SEEDS[2]))
    assert {"id", "doc_id", "text", "start", "end", "source"} <= rows[0].keys()
