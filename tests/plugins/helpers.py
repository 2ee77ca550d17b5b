"""Build throwaway plugins and ID numbers for the plugin tests."""
from __future__ import annotations

from pathlib import Path

import yaml

from engine.security import Actor

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
ADMIN = Actor.system("tests")
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def id_number(region: str, birth: str, seq: str) -> str:
    """A resident identity number with its GB 11643-1999 check character computed here."""
    first17 = region + birth + seq
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def uscc(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return first17 + USCC_CHARS[(31 - total % 31) % 31]


def make_plugin(root: Path, name: str, scripts: dict[str, str], **manifest) -> Path:
    folder = root / f"plugin_{name}"
    folder.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "version": manifest.pop("version", "1.0.0"), "label": {"zh-CN": name, "en": name}, **manifest}
    (folder / "plugin.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for path, src in scripts.items():
        (folder / path).write_text(src, encoding="utf-8")
    return folder


def install(loom, folder, enable=True, actor=ADMIN) -> dict:
    return loom.extensions["plugins"].install(folder, actor, enable=enable)


def customer_bundle(bundle_copy, extra_fields: str = "", extra: str = "") -> Path:
    """The mini bundle with an identity number field and whatever else a test appends."""
    bundle = bundle_copy("mini")
    with open(bundle / "entities" / "customer.yaml", "a", encoding="utf-8") as f:
        f.write("  - {key: id_number, type: text, label: {zh-CN: 身份证号, en: ID number}}\n")
        f.write(extra_fields)
        f.write(extra)
    return bundle
