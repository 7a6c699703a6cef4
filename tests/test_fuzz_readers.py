"""Random and malformed input to every reader gives a `Problem` error or a valid result, never another
exception (issue 11). Readers: annotation JSONL, Label Studio and Prodigy exports, prediction inputs."""
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims.corpus import annotations, interchange
from claims.predictor import inputs
from claims.util.errors import InputError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
keys = st.sampled_from(["id", "doc_id", "text", "start", "end", "labels", "meta", "source", "data",
                        "annotations", "result", "accept", "answer", "options", "claim_type", "withdrawal"])
records = st.dictionaries(keys, json_values, max_size=8)
payloads = st.one_of(
    st.binary(max_size=400),
    st.lists(records, max_size=4).map(lambda rs: "\n".join(json.dumps(r) for r in rs).encode()),
    st.lists(records, max_size=4).map(lambda rs: json.dumps(rs).encode()),
    st.text(max_size=300).map(str.encode),
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    # One folder for the module (hypothesis refuses function-scoped fixtures); each example overwrites.
    return tmp_path_factory.mktemp("fuzz")


def _file(folder: Path, data: bytes, suffix: str) -> Path:
    p = folder / f"input{suffix}"
    p.write_bytes(data)
    return p


@SETTINGS
@given(payloads)
def test_annotation_reader_reports_problems(scratch, data):
    recs, problems = annotations.read_file(_file(scratch, data, ".jsonl"))
    assert isinstance(recs, list) and isinstance(problems, list)


@pytest.mark.parametrize("read", [interchange.from_label_studio, interchange.from_prodigy],
                         ids=["label-studio", "prodigy"])
@SETTINGS
@given(data=payloads)
def test_annotation_tool_exports(scratch, schema, read, data):
    try:
        read(_file(scratch, data, ".json"), schema)
    except InputError:
        pass


@SETTINGS
@given(payloads, st.sampled_from([".csv", ".jsonl", ".txt"]), st.booleans())
def test_prediction_inputs(scratch, data, suffix, lines):
    try:
        for unit in inputs.read_units(str(_file(scratch, data, suffix)), lines=lines):
            assert isinstance(unit["text"], str)
    except InputError:
        pass
