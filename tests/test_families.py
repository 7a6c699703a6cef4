import numpy as np
import pytest

from tests.conftest import SHRINK, shrunk
from claims.models import registry
from claims.models.families.base import ConstantLabelWarning, build, load_model
from claims.training.loop import load_data

FAMILIES = registry.names()
CONFIG_OF = {"majority.v1": "majority", "tfidf_linear.v1": "tfidf_linear", "embed_linear.v1": "embed_linear",
             "finetune.v1": "finetune", "rules.v1": "rules", "ensemble.v1": "ensemble"}


def test_every_registered_name_resolves_and_has_a_config():
    assert set(FAMILIES) == set(CONFIG_OF)
    for name in FAMILIES:
        cls = registry.get(name)
        assert cls.family_name == name
        assert registry.options_class(name)().name == name


def test_unknown_name_suggests_closest():
    with pytest.raises(KeyError, match="did you mean 'finetune.v1'"):
        registry.get("finetune.v2")


@pytest.fixture(scope="module")
def data():
    return load_data(shrunk("majority"))


@pytest.mark.parametrize("name", FAMILIES)
def test_fit_predict_save_load_round_trip(name, data, tmp_path):
    cfg = shrunk(CONFIG_OF[name])
    model = build(cfg.model, cfg.train, data.schema)
    assert model.fit(data.texts, data.y) is model
    proba = model.predict_proba(data.texts[:9])
    assert proba.shape == (9, len(data.space))
    assert np.all((proba >= 0) & (proba <= 1))
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert type(again) is type(model)
    np.testing.assert_allclose(again.predict_proba(data.texts[:9]), proba, atol=1e-6)


@pytest.mark.parametrize("name", ["tfidf_linear.v1", "finetune.v1"])
def test_label_without_positives_predicts_base_rate_and_warns(name, data):
    cfg = shrunk(CONFIG_OF[name])
    y = data.y.copy()
    y[:, 0] = 0  # no casualties at all in this training data
    model = build(cfg.model, cfg.train, data.schema)
    with pytest.warns(ConstantLabelWarning, match="claim_type.casualties has no positive"):
        model.fit(data.texts, y)
    assert np.all(model.predict_proba(data.texts[:5])[:, 0] == 0.0)


def test_learned_families_beat_chance_on_training_data(data):
    """A sanity check that fitting learns something: training-set AP well above the base rate."""
    from sklearn.metrics import average_precision_score

    cfg = shrunk("tfidf_linear")
    proba = build(cfg.model, cfg.train, data.schema).fit(data.texts, data.y).predict_proba(data.texts)
    attack = data.space.column_names.index("claim_type.attack")
    assert average_precision_score(data.y[:, attack], proba[:, attack]) > 0.9


def test_embedding_cache_reuses_vectors(monkeypatch, tmp_path):
    from claims.models import embedding_cache

    texts = ["JNIM claimed the attack.", "The army withdrew."]
    first = embedding_cache.embed(texts, cache_dir=tmp_path)
    monkeypatch.setattr(embedding_cache, "compute", lambda *a, **k: pytest.fail("recomputed a cached text"))
    monkeypatch.setattr(embedding_cache, "_READ", {})  # a new process: the vectors come from the files
    np.testing.assert_array_equal(embedding_cache.embed(texts, cache_dir=tmp_path), first)
    monkeypatch.setattr(embedding_cache.np, "load", lambda *a, **k: pytest.fail("read a file twice in one process"))
    np.testing.assert_array_equal(embedding_cache.embed(texts[::-1], cache_dir=tmp_path), first[::-1])
    assert first.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)


def test_rules_fire_on_unseen_actors_through_the_gazetteer(data):
    cfg = shrunk("rules")
    model = build(cfg.model, cfg.train, data.schema).fit(data.texts, data.y)
    cols = data.space.column_names
    fired = model.fired(["ISWAP said its fighters had killed 12 soldiers in Monguno.",
                         "The Somali National Army said it had withdrawn from El Baraf."])
    assert fired[0, cols.index("attribution.militant_group")] == 1
    assert fired[0, cols.index("claim_type.casualties")] == 1
    assert fired[1, cols.index("attribution.government_military")] == 1
    assert fired[1, cols.index("withdrawal.yes")] == 1
    assert fired[1, cols.index("attribution.militant_group")] == 0


def test_ensemble_uses_rule_cues_where_ngrams_know_nothing(data):
    """Unseen wording: the n-grams have no evidence, the cue indicator should carry the label."""
    cfg = shrunk("ensemble", "data.augment.enabled=false")
    model = build(cfg.model, cfg.train, data.schema).fit(data.texts, data.y)
    cols = data.space.column_names
    head = model.head_.estimators_[cols.index("withdrawal.yes")]
    assert head.coef_[0, -len(cols) + cols.index("withdrawal.yes")] > 0  # the withdrawal cue weighs for it
    without = build(shrunk("ensemble", "data.augment.enabled=false", "model.features=[tfidf,embeddings]").model,
                    cfg.train, data.schema).fit(data.texts, data.y)
    text = ["The garrison evacuated the outpost overnight."]
    assert model.predict_proba(text)[0, -1] > without.predict_proba(text)[0, -1]


@pytest.mark.parametrize("name", ["tfidf_linear.v1", "ensemble.v1"])
def test_context_and_typed_mentions_channels_round_trip_and_matter(name, data, tmp_path):
    cfg = shrunk(CONFIG_OF[name], "model.context=true", "model.typed_mentions=true", "model.min_df=1")
    model = build(cfg.model, cfg.train, data.schema).fit(data.texts, data.y, data.contexts)
    with_ctx = model.predict_proba(data.texts[:9], data.contexts[:9])
    without = model.predict_proba(data.texts[:9])
    assert not np.allclose(with_ctx, without)  # the previous unit is read
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "typed_mentions.json").exists()  # the gazetteer travels with the model
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(data.texts[:9], data.contexts[:9]), with_ctx, atol=1e-9)


def test_negation_scope_is_marked_up_to_the_clause_break():
    from claims.models.families.channels import mark_negation

    assert mark_negation("The army denied that troops had left the base, saying they remain.") == \
        "The army denied neg_that neg_troops neg_had neg_left neg_the neg_base, saying they remain."
    assert mark_negation("The soldiers didn't leave Boni.") == "The soldiers didn't neg_leave neg_Boni."
    assert mark_negation("Is it true that the soldiers left the base?").endswith("left the base? qmark")
    assert mark_negation("Nobody knows; the notice was posted.") == "Nobody knows; the notice was posted."
    assert mark_negation("They didn’t leave; they cannot stay.") == "They didn’t neg_leave; they cannot neg_stay."


@pytest.mark.parametrize("name", ["tfidf_linear.v1", "ensemble.v1"])
def test_negation_channel_round_trips_and_is_read(name, data, tmp_path):
    from claims.models.families.channels import Channels

    on = shrunk(CONFIG_OF[name], "model.negation=true", "model.min_df=1")
    off = shrunk(CONFIG_OF[name], "model.negation=false", "model.min_df=1")
    model = build(on.model, on.train, data.schema).fit(data.texts, data.y, data.contexts)
    plain = build(off.model, off.train, data.schema).fit(data.texts, data.y, data.contexts)
    with_neg = model.predict_proba(data.texts[:9], data.contexts[:9])
    assert not np.allclose(with_neg, plain.predict_proba(data.texts[:9], data.contexts[:9]))
    model.save(tmp_path / "m")
    assert any(p.name.endswith("negation.skops") for p in (tmp_path / "m").iterdir())
    # Prediction marks the text as training did: the same units give the same block both ways.
    channels = Channels(on.model)
    fitted = channels.fit_transform(data.texts, data.contexts)
    assert abs(fitted - channels.transform(data.texts, data.contexts)).max() < 1e-9
    assert any(word.startswith("neg_") for word in channels.negation_vec_.vocabulary_)
    np.testing.assert_allclose(load_model(tmp_path / "m").predict_proba(data.texts[:9], data.contexts[:9]),
                               with_neg, atol=1e-9)


def test_openings_are_the_first_units_of_the_same_article(data):
    from claims.corpus.opening import OPENING_UNITS, opening_of

    assert opening_of(["Headline ", " By A. Writer", "Lead.", "Body."]) == "Headline By A. Writer Lead."
    for doc in dict.fromkeys(data.docs):
        idx = [i for i, d in enumerate(data.docs) if d == doc]
        expected = opening_of([data.texts[i] for i in idx[:OPENING_UNITS]])
        assert {data.openings[i] for i in idx} == {expected}
    assert len(set(data.openings)) == len(set(data.docs)) > 1


@pytest.mark.parametrize("name", ["tfidf_linear.v1", "ensemble.v1"])
def test_opening_channel_round_trips_and_is_read(name, data, tmp_path):
    on = shrunk(CONFIG_OF[name], "model.opening=true", "model.min_df=1")
    off = shrunk(CONFIG_OF[name], "model.opening=false", "model.min_df=1")
    texts, contexts, openings = data.texts[:9], data.contexts[:9], data.openings[:9]
    model = build(on.model, on.train, data.schema).fit(data.texts, data.y, data.contexts, data.docs, data.openings)
    with_opening = model.predict_proba(texts, contexts, openings)
    loose = model.predict_proba(texts, contexts)  # no opening (loose sentences): still a prediction
    assert not np.allclose(with_opening, loose) and np.isfinite(loose).all()
    other = next(o for o in data.openings if o != openings[0])  # another article's opening: another prediction
    assert not np.allclose(model.predict_proba(texts[:1], contexts[:1], [other]), with_opening[:1])

    plain = build(off.model, off.train, data.schema).fit(data.texts, data.y, data.contexts, data.docs, data.openings)
    np.testing.assert_array_equal(plain.predict_proba(texts, contexts, openings), plain.predict_proba(texts, contexts))
    model.save(tmp_path / "m")
    assert any(p.name.endswith("opening.skops") for p in (tmp_path / "m").iterdir())
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(texts, contexts, openings), with_opening, atol=1e-9)
    np.testing.assert_allclose(again.predict_proba(texts, contexts), loose, atol=1e-9)


@pytest.mark.parametrize("name", ["tfidf_linear.v1", "ensemble.v1"])
def test_loose_head_is_the_model_without_the_opening_for_units_without_one(name, data, tmp_path):
    fit = lambda cfg: build(cfg.model, cfg.train, data.schema).fit(  # noqa: E731
        data.texts, data.y, data.contexts, data.docs, data.openings)
    both = fit(shrunk(CONFIG_OF[name], "model.opening=true", "model.loose_head=true", "model.min_df=1"))
    framed = fit(shrunk(CONFIG_OF[name], "model.opening=true", "model.min_df=1"))
    plain = fit(shrunk(CONFIG_OF[name], "model.opening=false", "model.min_df=1"))
    texts, contexts, openings = data.texts[:12], data.contexts[:12], list(data.openings[:12])
    mixed = [o if k % 3 else "" for k, o in enumerate(openings)]  # every third unit loose
    loose = [k for k, o in enumerate(mixed) if not o]
    got = both.predict_proba(texts, contexts, mixed)
    # A unit with an opening gets the main head, the same as without a loose head ...
    np.testing.assert_allclose(np.delete(got, loose, axis=0),
                               np.delete(framed.predict_proba(texts, contexts, mixed), loose, axis=0), atol=1e-9)
    # ... and a unit without one what the model without the channel predicts, which the main head does not.
    np.testing.assert_allclose(got[loose], plain.predict_proba(texts, contexts)[loose], atol=1e-6)
    assert not np.allclose(got[loose], framed.predict_proba(texts, contexts, mixed)[loose])
    both.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(texts, contexts, mixed), got, atol=1e-9)


def test_opening_columns_are_the_block_the_opening_changes(data):
    from claims.models.families.channels import Channels

    cfg = shrunk("tfidf_linear", "model.opening=true", "model.context=true", "model.negation=true", "model.min_df=1")
    channels = Channels(cfg.model)
    channels.fit_transform(data.texts, data.contexts, data.openings)
    X = channels.transform(data.texts, data.contexts, data.openings)
    start, end = channels.opening_columns()
    assert end == X.shape[1] and 0 < start < end
    blank = channels.transform(data.texts, data.contexts, [""] * len(data.texts))
    changed = np.flatnonzero(abs(X - blank).sum(axis=0).A1)
    assert changed.min() >= start and blank[:, start:end].nnz == 0


def test_a_loose_head_needs_the_opening():
    from claims.util.errors import InputError

    with pytest.raises(InputError, match="loose_head: true needs opening: true"):
        shrunk("tfidf_linear", "model.opening=false", "model.loose_head=true")


def test_an_ensemble_without_tfidf_refuses_the_opening(schema):
    from claims.util.errors import InputError

    # The opening is a channel of the tfidf feature: asked for without it, the config says so
    # rather than training a model that silently ignores it.
    with pytest.raises(InputError, match="needs the tfidf feature"):
        shrunk("ensemble", "model.features=[embeddings, rules]", "model.opening=true")
    cfg = shrunk("ensemble", "model.opening=true")
    options = cfg.model
    assert build(options, cfg.train, schema).reads_openings
    copied = options.model_copy(update={"features": ["embeddings", "rules"]})  # model_copy skips validators
    assert not build(copied, cfg.train, schema).reads_openings
    with pytest.raises(ValueError, match="needs the tfidf feature"):  # assignment after loading is checked
        options.features = ["embeddings", "rules"]


def test_ensemble_reads_the_previous_units_embedding_and_embeds_each_text_once(data, monkeypatch):
    from claims.models import embedding_cache

    cfg = shrunk("ensemble", "data.augment.enabled=false", "model.features=[embeddings]", "model.context=false",
                 "model.context_embeddings=0.5")
    model = build(cfg.model, cfg.train, data.schema).fit(data.texts, data.y, data.contexts)
    model.for_inference()
    computed = []
    real = embedding_cache.compute_torch  # a model made ready for prediction embeds on the torch path
    monkeypatch.setattr(embedding_cache, "compute_torch", lambda texts, **kw: computed.extend(texts) or real(texts, **kw))
    units, previous = data.texts[1:4], data.texts[0:3]  # three consecutive units of one article
    assert data.contexts[1:4] == previous
    with_ctx = model.predict_proba(units, previous)
    # 4 distinct texts, each embedded once, as the features read them (listed mentions canonical)
    assert sorted(computed) == sorted({model.canonical_.mask(t) for t in set(units) | set(previous)})
    assert len(computed) == 4
    own, before = model._embeddings(units, ["", *previous[1:]])
    assert not before[0].any() and before[1:].any()  # no previous unit: zeros
    assert not np.allclose(with_ctx, model.predict_proba(units))  # loose sentences still predict, differently


def test_typed_mentions_generalise_across_actors_of_a_type():
    from claims.models.families.channels import TypedMentions

    typed = TypedMentions.from_gazetteer()
    a = typed.mask("JNIM said in a statement that it had seized the base in Djibo.")
    b = typed.mask("ISWAP said in a statement that it had seized the base in Monguno.")
    assert a == b and "ARMED_GROUP" in a


def test_masks_are_remembered_per_gazetteer_and_bounded(data, monkeypatch):
    from claims.models.families import channels

    monkeypatch.setattr(channels, "_MASKED", {})
    typed, canonical = channels.TypedMentions.from_gazetteer(), channels.TypedMentions.canonical_from_gazetteer()
    plain = lambda m, t: m.pattern.sub(lambda g: m.tokens[g.group(1)], t)  # noqa: E731 - the rewrite itself
    texts = data.texts[:12]
    for text in texts[:3] + texts[:3]:  # the second pass is read from memory
        assert typed.mask(text) == plain(typed, text) and canonical.mask(text) == plain(canonical, text)
    # One memory per gazetteer: the same text masks differently under each.
    assert sorted(len(m) for m in channels._MASKED.values()) == [3, 3]
    monkeypatch.setattr(channels, "_MASKED", {})
    monkeypatch.setattr(channels, "MASKED_LIMIT", 5)
    for text in texts + texts:
        assert typed.mask(text) == plain(typed, text) and canonical.mask(text) == plain(canonical, text)
        assert sum(len(m) for m in channels._MASKED.values()) <= 5


def test_canonical_mentions_make_listed_actors_and_places_indistinguishable(data, tmp_path):
    cfg = shrunk("ensemble", "model.canonical_mentions=true", "data.augment.enabled=false")
    model = build(cfg.model, cfg.train, data.schema).fit(data.texts, data.y, data.contexts)
    pair = ["The Ghana Armed Forces said its troops had pulled back from Hamile.",
            "The Malian army said its troops had pulled back from Gao."]
    proba = model.predict_proba(pair)
    np.testing.assert_array_equal(proba[0], proba[1])
    unlisted = model.predict_proba(["The Ruritanian army said its troops had pulled back from Hamile."])
    assert not np.array_equal(unlisted[0], proba[0])  # names outside the gazetteer are read as written
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "canonical_mentions.json").exists()  # the rewriting travels with the model
    np.testing.assert_allclose(load_model(tmp_path / "m").predict_proba(pair), proba, atol=1e-9)


def test_contexts_are_the_previous_unit_of_the_same_article(data):
    for i in range(1, len(data.texts)):
        if data.docs[i] != data.docs[i - 1]:
            assert data.contexts[i] == ""
    first = data.docs.index(data.docs[3])
    assert data.contexts[first] == "" and data.contexts[first + 1] == data.texts[first]


def test_rule_cues_are_remembered_while_training_but_not_when_serving(schema):
    from claims.corpus.labelspace import LabelSpace
    from claims.models import registry
    from claims.models.families import rules as rules_module
    from claims.models.options import TrainConfig

    rules = registry.get("rules.v1")(registry.options_class("rules.v1")(), TrainConfig(), LabelSpace(schema)).prepare()
    text = "JNIM said in a statement that its fighters had seized the army base."
    rules_module._FIRED.clear()
    first = rules.fired([text])
    assert len(rules_module._FIRED) == 1 and first.flags.writeable
    first[:] = 0  # a caller's copy: the memo keeps its own row
    assert (rules.fired([text]) == rules._fired_one(text)).all() and rules._fired_one(text).any()
    rules_module._FIRED.clear()
    rules.for_inference().fired([text, "Another unit entirely."])
    assert not rules_module._FIRED


def test_finetune_reads_sentence_pairs_and_stops_early_on_held_out_articles(data, tmp_path):
    cfg = shrunk("finetune", "model.context=true", "model.early_stopping=true", "model.validation_fraction=0.25",
                 "train.epochs=3", "model.patience=1", "train.max_length=48")
    model = build(cfg.model, cfg.train, data.schema)
    model.fit(data.texts, data.y, data.contexts, data.docs)
    assert 1 <= len(model.validation_) <= 3 and 1 <= model.best_epoch_ <= len(model.validation_)
    assert len(model.history_) == len(model.validation_)
    enc = model.encode(data.texts[1:3], data.contexts[1:3])
    assert all(1 in ids for ids in enc["token_type_ids"])  # the previous unit is the pair's second segment
    with_ctx = model.predict_proba(data.texts[1:9], data.contexts[1:9])
    assert not np.allclose(with_ctx, model.predict_proba(data.texts[1:9]))  # loose sentences: no context, still predicted
    words = lambda n: "word " * n  # noqa: E731 - one word piece each
    budget = model.max_tokens
    assert model.count_truncated([words(budget * 3 // 4)], [""]) == 0
    assert model.count_truncated([words(budget * 3 // 4)], [words(budget)]) == 1  # cut to make room for its context
    assert model.count_truncated(["The army said it repelled the attack."], [words(budget)]) == 0  # only the context is cut
    assert model.count_truncated([words(budget * 2)], [""]) == 1
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.best_epoch_ == model.best_epoch_
    np.testing.assert_allclose(again.predict_proba(data.texts[1:9], data.contexts[1:9]), with_ctx, atol=1e-5)


def test_finetune_validation_split_keeps_articles_whole():
    from claims.models.families.finetune import _validation_split

    groups = [f"doc{i // 5}" for i in range(60)]
    train, held = _validation_split(groups, 0.2, seed=3)
    assert not {groups[i] for i in train} & {groups[i] for i in held} and len(held)
    assert _validation_split(groups[:15], 0.2, seed=3) is None  # three articles: no early stopping


def test_finetune_trains_on_swapped_copies_but_never_scores_them():
    from claims.corpus.augment import article_of, copy_group, is_copy
    from claims.models.families.finetune import _validation_split

    originals = [f"doc{i // 5}" for i in range(60)]
    groups = originals + [copy_group(g) for g in originals[::2]]
    train, held = _validation_split(groups, 0.2, seed=3)
    held_articles = {groups[i] for i in held}
    assert held_articles and not any(is_copy(g) for g in held_articles)
    copies = [i for i in range(60, len(groups))]
    assert all((article_of(groups[i]) in held_articles) != (i in set(train)) for i in copies)


def test_finetune_stops_with_a_clear_error_when_the_loss_is_not_a_number(data, monkeypatch):
    import torch

    cfg = shrunk("finetune", "train.epochs=2")
    model = build(cfg.model, cfg.train, data.schema)
    monkeypatch.setattr(torch.nn.BCEWithLogitsLoss, "forward", lambda self, logits, target: (logits * float("nan")).sum())
    with pytest.raises(FloatingPointError, match="loss is nan at epoch 1, step 1; lower train.learning_rate"):
        model.fit(data.texts[:40], data.y[:40], data.contexts[:40], data.docs[:40])


def test_without_groups_articles_are_the_context_chains(data):
    from claims.models.families.base import _groups

    derived = _groups(data.texts, data.contexts, None)
    same = [derived[i] == derived[i - 1] for i in range(1, len(derived))]
    assert same == [data.docs[i] == data.docs[i - 1] for i in range(1, len(derived))]


def test_head_fitted_in_shares_of_labels_is_the_head_fitted_in_one_process(data):
    from claims.models.families.linear_head import fit_head, make_head
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(data.texts)
    shared = make_head(2.0, "balanced", 13).set_params(n_jobs=2)
    alone = make_head(2.0, "balanced", 13).set_params(n_jobs=None)
    fit_head(shared, X, data.y), fit_head(alone, X, data.y)
    assert len(shared.estimators_) == data.y.shape[1] and shared.n_jobs is None
    for a, b in zip(shared.estimators_, alone.estimators_):
        np.testing.assert_array_equal(getattr(a, "coef_", None), getattr(b, "coef_", None))
    np.testing.assert_array_equal(shared.predict_proba(X), alone.predict_proba(X))


def test_ngram_fits_remember_analysed_texts_without_changing_the_features(data, monkeypatch):
    from claims.models.families import channels

    cfg = shrunk("ensemble")
    monkeypatch.setattr(channels, "_ANALYSED", {})
    first = channels.Channels(cfg.model).fit_transform(data.texts, data.contexts)
    assert channels._ANALYSED and all(channels._ANALYSED.values())
    again = channels.Channels(cfg.model)
    second = again.fit_transform(data.texts, data.contexts)
    assert (first != second).nnz == 0
    vectorizers = [v for _, v in again.ngrams_.transformer_list] + [again.typed_vec_, again.context_vec_]
    assert not any("build_analyzer" in vars(v) for v in vectorizers)  # saved and served plain
    monkeypatch.setattr(channels, "_ANALYSED", {})
    assert (channels.Channels(cfg.model).fit_transform(data.texts, data.contexts) != first).nnz == 0


def test_finetune_asked_for_a_gpu_it_lacks_says_so_in_one_line(tmp_path):
    import torch
    from typer.testing import CliRunner

    from claims.cli import app
    from claims.util.paths import CONFIGS_DIR

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: model.device=cuda is valid here")
    result = CliRunner().invoke(app, ["train", str(CONFIGS_DIR / "finetune.yaml"), "--tracking-uri",
                                      f"sqlite:///{tmp_path / 'mlflow.db'}", *[a for s in SHRINK for a in ("--set", s)],
                                      "--set", "model.device=cuda"])
    assert result.exit_code == 1
    assert "finetune.yaml [model.device]: model.device is 'cuda' but torch sees no CUDA GPU here" in result.output
    assert "Traceback" not in result.output
    model = build(shrunk("finetune", "model.device=cuda").model, shrunk("finetune").train, load_data(shrunk("finetune")).schema)
    with pytest.raises(RuntimeError, match="finetune.v1: model.device is 'cuda' but torch sees no CUDA GPU"):
        model.fit(["The army withdrew."] * 4, np.zeros((4, len(model.space)), dtype=int))
