"""Rule definitions in bundles: validation names the file and the place, and changes nothing."""
from __future__ import annotations

import pytest

from engine.errors import InvalidInput


def test_bad_rule_definitions_are_reported_with_file_and_path(loom, bundle_copy):
    bundle = bundle_copy("surveil")
    (bundle / "rules" / "broken.yaml").write_text(
        "key: broken\nlabel: Broken\ntrigger: {event: trade}\ncondition: amount.real > 1\n"
        "features:\n  - {key: s, agg: sum, window: {hours: 1}}\n", encoding="utf-8")
    (bundle / "rules" / "combo.yaml").write_text(
        "key: combo\nkind: typology\nlabel: Combo\nrules: [{rule: nowhere}]\nalert_threshold: 1\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        loom.install(bundle)
    found = [(p.file, p.message) for p in info.value.problems]
    assert any(f == "rules/broken.yaml" and "missing required property `field`" in m for f, m in found)
    # expressions and references are checked once the shapes are right
    (bundle / "rules" / "broken.yaml").write_text(
        "key: broken\nlabel: Broken\ntrigger: {event: trade}\ncondition: amount.real > 1\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        loom.install(bundle)
    assert [(p.file, p.path) for p in info.value.problems if "attribute access" in p.message] == [
        ("rules/broken.yaml", "condition")]
    assert any(p.file == "rules/combo.yaml" and "rule `nowhere` does not exist" in p.message
               for p in info.value.problems)
    assert "surveil" not in {a.key for a in _apps(loom)}


def test_a_rule_without_a_rule_set_is_refused(loom, bundle_copy):
    bundle = bundle_copy("surveil")
    (bundle / "rules" / "surveillance.yaml").unlink()
    with pytest.raises(InvalidInput) as info:
        loom.install(bundle)
    assert any("belongs to no rule set" in p.message for p in info.value.problems)


def test_score_and_bands_together_are_refused(loom, bundle_copy):
    bundle = bundle_copy("surveil")
    (bundle / "rules" / "both.yaml").write_text(
        "key: both\nlabel: Both\ntrigger: {event: trade}\ncondition: amount > 1\nscore: 5\n"
        "bands: {value: amount, steps: [{min: 0, score: 1}]}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        loom.install(bundle)
    assert any("either `score` or `bands`" in p.message and p.file == "rules/both.yaml" for p in info.value.problems)


def _apps(loom):
    import sqlalchemy as sa
    from engine.meta import store
    with loom.db.connect() as conn:
        return list(conn.execute(sa.select(store.apps.c.key)))
