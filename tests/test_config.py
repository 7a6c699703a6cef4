import pytest

from tests.conftest import CONFIG_FILES
from claims.models import registry
from claims.training.config import ExperimentConfig, load_config
from claims.util.errors import InputError
from claims.util.paths import CONFIGS_DIR, ROOT

BENCH_CONFIG_FILES = sorted((ROOT / "bench" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIG_FILES + BENCH_CONFIG_FILES, ids=lambda p: p.name)
def test_every_config_file_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.name == path.stem
    assert cfg.model.name in registry.names()


def test_the_encoder_comparisons_cover_every_encoder_and_pooling():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_encoders", BENCH_CONFIG_FILES[0].parents[1] / "encoders.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    encoders_section = [load_config(p).model for p in bench.SECTIONS["encoders"][1]]
    assert {m.encoder for m in encoders_section} == {"minilm-l6", "mpnet-base"}
    assert {m.pooling for m in encoders_section} == {"mean", "cls", "mean_max"}
    layers_section = [load_config(p).model for p in bench.SECTIONS["layers"][1]]
    assert {m.encoder for m in layers_section} == {"minilm-l6", "minilm-l6-first3", "minilm-l6-first2"}
    in_bench = [{p for p in configs if p in BENCH_CONFIG_FILES} for _, configs in bench.SECTIONS.values()]
    assert set.union(*in_bench) == set(BENCH_CONFIG_FILES) and not set.intersection(*in_bench)  # each in one section


def test_default_configs_cover_every_family():
    assert {load_config(p).model.name for p in CONFIG_FILES} == set(registry.names())


def _error(path, overrides=()) -> str:
    with pytest.raises(InputError) as e:
        load_config(path, list(overrides))
    return str(e.value)


def test_misspelt_key_names_path_and_closest_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIGS_DIR / "finetune.yaml").read_text().replace("learning_rate:", "learnig_rate:"))
    msg = _error(bad)
    assert "[train.learnig_rate]" in msg and "did you mean 'train.learning_rate'" in msg


def test_unknown_family_option_suggests_the_family_key(tmp_path):
    msg = _error(CONFIGS_DIR / "tfidf_linear.yaml", ["model.c=3"])
    assert "[model.c]" in msg and "did you mean 'model.C'" in msg


def test_wrong_type_names_expected_type():
    msg = _error(CONFIGS_DIR / "finetune.yaml", ["train.epochs=many"])
    assert "[train.epochs]" in msg and "integer" in msg


def test_unknown_registry_name_suggests_closest():
    msg = _error(CONFIGS_DIR / "tfidf_linear.yaml", ["model.name=tfidf_linear.v2"])
    assert "[model]" in msg and "did you mean 'tfidf_linear.v1'" in msg


def test_unknown_section(tmp_path):
    msg = _error(CONFIGS_DIR / "majority.yaml", ["evals.seeds=2"])
    assert "[evals]" in msg and "did you mean 'eval'" in msg


def test_overrides_are_applied_and_resolved_config_carries_them():
    cfg = load_config(CONFIGS_DIR / "tfidf_linear.yaml", ["model.C=4", "eval.seeds=5", "data.tasks=[withdrawal]"])
    assert cfg.model.C == 4.0 and cfg.eval.seeds == 5 and cfg.data.tasks == ["withdrawal"]
    assert "seeds: 5" in cfg.to_yaml()
    assert cfg.flat_params()["model.C"] == "4.0"


def test_malformed_override():
    with pytest.raises(InputError, match="section.key=value"):
        load_config(CONFIGS_DIR / "majority.yaml", ["eval.seeds"])


def test_missing_config_file(tmp_path):
    assert "config file not found" in _error(tmp_path / "nope.yaml")
