"""Batch prediction from the command line: every input and output format, and every bad input."""

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from claims.cli import app
from claims.util.paths import SEEDS_DIR
from claims.corpus.segment import segment_file

runner = CliRunner()
SEED = SEEDS_DIR / "000_6d991916dd06222c.txt"


def _predict(pkg, *args, input=None):
    return runner.invoke(app, ["predict", "--model", str(pkg), "--quiet", *map(str, args)], input=input)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_txt_article_is_segmented_as_in_training(tfidf_package, tmp_path):
    out = tmp_path / "out.jsonl"
    r = _predict(tfidf_package["package"], SEED, "-o", out)
    assert r.exit_code == 0, r.output
    rows = _jsonl(out)
    units = segment_file(SEED)
    assert [row["id"] for row in rows] == [u.id for u in units]
    raw = SEED.read_text()
    assert all(raw[row["start"]:row["end"]] == row["text"] for row in rows)
    first = rows[0]
    assert {"claim_type", "attribution", "withdrawal", "p.claim_type.casualties", "p.withdrawal.yes"} <= first.keys()
    assert isinstance(first["claim_type"], list) and isinstance(first["withdrawal"], bool)


def test_an_article_gives_every_unit_its_context_and_opening_as_in_training():
    from claims.predictor import inputs
    from claims.training.loop import load_data
    from tests.conftest import shrunk

    units = list(inputs.read_units(str(SEED)))
    texts = [u["text"] for u in units]
    assert [u[inputs.CONTEXT] for u in units] == ["", *texts[:-1]]
    trained = load_data(shrunk("majority"))  # the seeds come first; their annotated units, as training reads them
    opening = {trained.openings[i] for i, d in enumerate(trained.docs) if d == SEED.stem}
    assert {u[inputs.OPENING] for u in units} == opening and len(next(iter(opening))) > len(texts[0])
    lines = list(inputs.read_units(str(SEED), lines=True))  # loose lines have neither
    assert not any(inputs.CONTEXT in u or inputs.OPENING in u for u in lines)


def test_side_texts_that_do_not_match_the_units_are_refused(tfidf_package):
    from claims.predictor.predictor import Predictor

    predictor = Predictor.load(tfidf_package["package"])
    texts = ["The army withdrew from the camp.", "JNIM said so."]
    assert predictor.predict(texts, ["", texts[0]], ["Headline", "Headline"]).decisions.shape[0] == 2
    with pytest.raises(ValueError, match="1 openings for 2 texts"):
        predictor.predict(texts, ["", texts[0]], ["Headline"])
    with pytest.raises(ValueError, match="3 contexts for 2 texts"):
        predictor.predict(texts, ["", "", ""])


def test_lines_mode_keeps_one_unit_per_line_including_empty(tfidf_package, tmp_path):
    src = tmp_path / "lines.txt"
    src.write_text("The army withdrew from the camp. JNIM said so.\n\n   \nResidents fled.\n")
    out = tmp_path / "out.jsonl"
    assert _predict(tfidf_package["package"], src, "--lines", "-o", out).exit_code == 0
    rows = _jsonl(out)
    assert [r["text"] for r in rows] == ["The army withdrew from the camp. JNIM said so.", "", "   ", "Residents fled."]
    for empty in rows[1:3]:
        assert empty["claim_type"] == [] and empty["attribution"] == [] and empty["withdrawal"] is False
        assert empty["p.claim_type.attack"] is None


def test_jsonl_and_csv_inputs_keep_ids_and_order_across_batches(tfidf_package, tmp_path):
    units = segment_file(SEED)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"u{i}", "text": u.text}) + "\n" for i, u in enumerate(units)))
    out = tmp_path / "out.jsonl"
    assert _predict(tfidf_package["package"], src, "-o", out, "--batch-size", 7).exit_code == 0
    assert [r["id"] for r in _jsonl(out)] == [f"u{i}" for i in range(len(units))]

    csv_src = tmp_path / "in.csv"
    with open(csv_src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows([[f"c{i}", u.text] for i, u in enumerate(units)])
    out_csv = tmp_path / "out.csv"
    assert _predict(tfidf_package["package"], csv_src, "-o", out_csv, "--batch-size", 5).exit_code == 0
    rows = list(csv.DictReader(open(out_csv)))
    assert [r["id"] for r in rows] == [f"c{i}" for i in range(len(units))]
    # the same text gives the same labels whatever the input format
    assert [r["claim_type"] for r in rows] == ["|".join(r["claim_type"]) for r in _jsonl(out)]


def test_stdin_and_parquet_output(tfidf_package, tmp_path):
    out = tmp_path / "out.parquet"
    r = _predict(tfidf_package["package"], "-", "-o", out, input="JNIM claimed the attack. The army denied it.\n")
    assert r.exit_code == 0, r.output
    table = pq.read_table(out).to_pylist()
    assert [row["text"] for row in table] == ["JNIM claimed the attack.", "The army denied it."]
    assert table[0]["doc_id"] == "stdin" and isinstance(table[0]["claim_type"], list)


def test_summary_has_one_row_per_article(tfidf_package, tmp_path):
    out = tmp_path / "out.jsonl"
    r = _predict(tfidf_package["package"], SEED, SEEDS_DIR / "004_d1f2d348642eda18.txt", "-o", out, "--summary")
    assert r.exit_code == 0, r.output
    summary = _jsonl(tmp_path / "out.jsonl.summary.jsonl")
    assert [s["doc_id"] for s in summary] == ["000_6d991916dd06222c", "004_d1f2d348642eda18"]
    assert {"any_withdrawal", "claims_by_source", "units"} <= summary[0].keys()
    assert summary[0]["units"] == len(segment_file(SEED))
    # the same predictions as CSV get their own summary: neither overwrites the other
    assert _predict(tfidf_package["package"], SEED, "-o", tmp_path / "out.csv", "--summary").exit_code == 0
    assert len(_jsonl(tmp_path / "out.csv.summary.jsonl")) == 1
    assert len(_jsonl(tmp_path / "out.jsonl.summary.jsonl")) == 2


def test_parquet_input_and_other_columns_pass_through(tfidf_package, tmp_path):
    import pyarrow as pa

    src = tmp_path / "in.parquet"
    import datetime

    pq.write_table(pa.table({"text": ["JNIM claimed the attack.", None, "The army withdrew from Boni."],
                             "url": ["a", "b", "c"], "score_in": [1.5, 2.5, None],
                             "published": [datetime.date(2024, 3, 1)] * 3, "note": [None, None, "late"],
                             "claim_type": ["old", "old", "old"]}), src)
    for out in (tmp_path / "out.parquet", tmp_path / "out.jsonl", tmp_path / "out.csv"):
        # batches of 2: `note` has no value in the first batch and one in the second
        r = _predict(tfidf_package["package"], src, "-o", out, "--batch-size", 2)
        assert r.exit_code == 0, r.output
    assert pq.read_table(tmp_path / "out.parquet").column("note").to_pylist() == [None, None, "late"]
    assert _jsonl(tmp_path / "out.jsonl")[0]["published"] == "2024-03-01"
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [row["url"] for row in rows] == ["a", "b", "c"] and rows[2]["score_in"] is None
    assert [row["id"] for row in rows] == ["in:0", "in:1", "in:2"] and rows[1]["text"] == ""
    # a prediction column wins over an input column of the same name
    assert all(isinstance(row["claim_type"], list) for row in rows)
    assert [row["url"] for row in _jsonl(tmp_path / "out.jsonl")] == ["a", "b", "c"]
    assert [row["url"] for row in csv.DictReader(open(tmp_path / "out.csv"))] == ["a", "b", "c"]
    # CSV and JSONL inputs keep their other fields too
    jsrc = tmp_path / "in.jsonl"
    jsrc.write_text(json.dumps({"text": "Residents said the soldiers left.", "meta": {"feed": 7}}) + "\n")
    assert _predict(tfidf_package["package"], jsrc, "-o", tmp_path / "j.jsonl").exit_code == 0
    assert _jsonl(tmp_path / "j.jsonl")[0]["meta"] == {"feed": 7}


def test_bad_parquet_input_is_one_clear_error(tfidf_package, tmp_path):
    import pyarrow as pa

    out = tmp_path / "o.jsonl"
    no_text = tmp_path / "no_text.parquet"
    pq.write_table(pa.table({"body": ["x"]}), no_text)
    r = _predict(tfidf_package["package"], no_text, "-o", out)
    assert r.exit_code == 1 and "no_text.parquet [text]" in r.output and "['body']" in r.output
    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), numbers)
    r = _predict(tfidf_package["package"], numbers, "-o", out)
    assert r.exit_code == 1 and "not strings" in r.output
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    r = _predict(tfidf_package["package"], broken, "-o", out)
    assert r.exit_code == 1 and "not a readable parquet file" in r.output
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_one_schema_output_refuses_fields_the_first_row_lacked_naming_their_input_line(tfidf_package, tmp_path,
                                                                                      suffix):
    src = tmp_path / "mixed.jsonl"
    src.write_text(json.dumps({"text": "One."}) + "\n\n" + json.dumps({"text": "Two.", "extra": 1}) + "\n")
    out = tmp_path / f"o{suffix}"
    out.write_text("previous\n")
    r = _predict(tfidf_package["package"], src, "-o", out)
    assert r.exit_code == 1 and f"{src}:3 [extra]" in r.output and ".jsonl" in r.output
    assert out.read_text() == "previous\n"


@pytest.mark.parametrize("suffix", ["/", "/."])
def test_an_output_path_that_names_a_folder_is_refused(tfidf_package, tmp_path, suffix):
    """pathlib drops a trailing slash or '/.', which would write new.jsonl: the path as typed is checked."""
    r = _predict(tfidf_package["package"], SEED, "-o", f"{tmp_path / 'new.jsonl'}{suffix}")
    assert r.exit_code != 0 and "names a folder" in r.output and isinstance(r.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []


def test_an_input_field_named_like_the_readers_own_keys_passes_through(tfidf_package, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "The army said it repelled the attack.", "_where": "Gao, Mali"}) + "\n")
    assert _predict(tfidf_package["package"], src, "-o", tmp_path / "o.jsonl").exit_code == 0
    assert _jsonl(tmp_path / "o.jsonl")[0]["_where"] == "Gao, Mali"


def test_an_output_that_is_a_symlink_is_written_through(tfidf_package, tmp_path):
    real = tmp_path / "store" / "real.jsonl"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(real)
    assert _predict(tfidf_package["package"], SEED, "-o", link).exit_code == 0
    assert link.is_symlink() and len(_jsonl(real)) == len(segment_file(SEED))


def test_invalid_utf8_names_file_and_line_and_leaves_output_untouched(tfidf_package, tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n")
    r = _predict(tfidf_package["package"], src, "-o", out)
    assert r.exit_code == 1 and "bad.jsonl:2" in r.output and "invalid UTF-8" in r.output
    assert out.read_text() == "previous results\n"
    r = _predict(tfidf_package["package"], src, "-o", out, "--errors", "replace")
    assert r.exit_code == 0 and _jsonl(out)[1]["text"] == "caf\ufffd"


def test_empty_article_and_other_language_or_encoding(tfidf_package, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    r = _predict(tfidf_package["package"], empty, "-o", tmp_path / "e.jsonl", "--quiet")
    assert r.exit_code == 0 and "no units" in r.output and (tmp_path / "e.jsonl").read_text() == ""
    french = "L'armée malienne affirme avoir repris le contrôle de Boni.\nLe JNIM a revendiqué l'attaque.\n"
    (tmp_path / "fr.txt").write_text(french)
    r = _predict(tfidf_package["package"], tmp_path / "fr.txt", "-o", tmp_path / "fr.jsonl")
    assert r.exit_code == 0 and len(_jsonl(tmp_path / "fr.jsonl")) == 2  # predicted; documented as unreliable
    (tmp_path / "fr16.txt").write_bytes(french.encode("utf-16"))
    r = _predict(tfidf_package["package"], tmp_path / "fr16.txt", "-o", tmp_path / "fr16.jsonl")
    assert r.exit_code == 1 and "fr16.txt:1: UTF-16 text" in r.output and "save it as UTF-8" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "fr16.jsonl").exists()


@pytest.mark.parametrize("fixture", ["tfidf_package", "finetune_package"])  # finetune: HF tokenizer path
def test_lone_surrogate_in_json_input_is_replaced_and_predicted(fixture, request, tmp_path):
    # Valid JSON whose strings are lone UTF-16 surrogates (no UTF-8 form); the last line holds a real pair.
    src = tmp_path / "s.jsonl"
    src.write_text('{"id": "a\\udfff", "text": "JNIM said \\ud800 it had seized the base.", "url": "u\\udc80",'
                   ' "context": "x\\ud800"}\n{"text": "The army withdrew \\ud83d\\ude00"}\n', encoding="ascii")
    out = tmp_path / "s.jsonl.out.jsonl"
    r = _predict(request.getfixturevalue(fixture)["package"], src, "-o", out)
    assert r.exit_code == 0 and r.exception is None, r.output
    rows = _jsonl(out)
    assert [row["text"] for row in rows] == ["JNIM said \ufffd it had seized the base.", "The army withdrew \U0001F600"]
    assert rows[0]["id"] == "a\ufffd" and rows[0]["url"] == "u\ufffd"
    assert all(row["p.withdrawal.yes"] is not None for row in rows)  # predicted, not skipped
    csv_out = tmp_path / "s.csv"
    assert _predict(request.getfixturevalue(fixture)["package"], src, "-o", csv_out).exit_code == 0
    assert "JNIM said \ufffd it" in csv_out.read_text(encoding="utf-8")


def test_missing_text_field_or_column_names_what_is_there(tfidf_package, tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "ok"}\n{"body": "x", "id": 3}\n')
    r = _predict(tfidf_package["package"], src, "-o", tmp_path / "o.jsonl")
    assert r.exit_code == 1 and "bad.jsonl:2 [text]" in r.output and "['body', 'id']" in r.output
    assert not (tmp_path / "o.jsonl").exists()
    src.write_text('{"text": "ok"}\n{"text": "a\tb"}\n')  # a raw tab inside a JSON string
    r = _predict(tfidf_package["package"], src, "-o", tmp_path / "o.jsonl")
    assert r.exit_code == 1 and "bad.jsonl:2: malformed JSON: Invalid control character at column" in r.output
    csv_src = tmp_path / "bad.csv"
    csv_src.write_text("id,sentence\n1,hello\n")
    r = _predict(tfidf_package["package"], csv_src, "-o", tmp_path / "o.jsonl")
    assert r.exit_code == 1 and "bad.csv:1 [text]" in r.output and "['id', 'sentence']" in r.output


def test_missing_or_corrupt_model(tfidf_package, tmp_path):
    r = _predict(tmp_path / "nowhere", SEED, "-o", tmp_path / "o.jsonl")
    assert r.exit_code == 1 and "does not exist" in r.output and r.output.count("nowhere") == 1
    assert not (tmp_path / "o.jsonl").exists()


def test_bad_output_type(tfidf_package, tmp_path):
    r = _predict(tfidf_package["package"], SEED, "-o", tmp_path / "o.xlsx")
    assert r.exit_code == 1 and "unknown output type" in r.output


def test_output_path_that_cannot_be_a_file_is_refused_before_predicting(tfidf_package, tmp_path):
    folder = tmp_path / "out.jsonl"
    folder.mkdir()
    r = _predict(tfidf_package["package"], SEED, "-o", folder)
    assert r.exit_code == 1 and "is a folder" in r.output and isinstance(r.exception, SystemExit)  # no traceback
    afile = tmp_path / "notes.txt"
    afile.write_text("kept\n")
    r = _predict(tfidf_package["package"], SEED, "-o", afile / "o.jsonl")
    assert r.exit_code == 1 and "notes.txt is a file" in r.output and isinstance(r.exception, SystemExit)
    assert afile.read_text() == "kept\n" and list(folder.iterdir()) == []


def test_malformed_csv_names_the_line_of_the_bad_record(tfidf_package, tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("previous\n")
    unclosed = tmp_path / "unclosed.csv"  # read loosely, rows 3 and 4 would become one cell
    unclosed.write_text('id,text\n1,"ok"\n2,"never closed\n3,fine\n')
    r = _predict(tfidf_package["package"], unclosed, "-o", out)
    assert r.exit_code == 1 and "unclosed.csv:3: malformed CSV" in r.output
    stray = tmp_path / "stray.csv"  # after a good two-line record and blank lines, the bad one is on line 7
    stray.write_text('id,text\n1,"two\nlines"\n2,ok\n\n\n3,"a"b\n')
    r = _predict(tfidf_package["package"], stray, "-o", out)
    assert r.exit_code == 1 and "stray.csv:7: malformed CSV" in r.output
    wide = tmp_path / "wide.csv"
    wide.write_text('id,text\n1,ok\n\n\n2,x,y\n')
    r = _predict(tfidf_package["package"], wide, "-o", out)
    assert r.exit_code == 1 and "wide.csv:5: 1 cell(s) more" in r.output
    twice = tmp_path / "twice.csv"
    twice.write_text("id,text,text\n1,a,b\n")
    r = _predict(tfidf_package["package"], twice, "-o", out)
    assert r.exit_code == 1 and "twice.csv:1 [text]" in r.output and "more than once" in r.output
    assert out.read_text() == "previous\n"
    excel = tmp_path / "excel.csv"  # a BOM and unnamed trailing columns, as spreadsheets write them
    excel.write_bytes("\ufefftext,id,,\nThe army withdrew.,a,,\n".encode())
    assert _predict(tfidf_package["package"], excel, "-o", out).exit_code == 0
    assert [(row["id"], row["text"]) for row in _jsonl(out)] == [("a", "The army withdrew.")]


def test_long_unit_is_truncated_and_counted(finetune_package, tmp_path):
    src = tmp_path / "long.jsonl"
    src.write_text(json.dumps({"text": "The army withdrew. " * 60}) + "\n" + json.dumps({"text": "Short."}) + "\n")
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["predict", "--model", str(finetune_package["package"]), str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    # max_length 32, doubled for the (unit, previous unit) pairs this fixture reads
    assert "1 unit(s) were cut to fit the model's 64-token input" in r.output
    assert len(_jsonl(out)) == 2
