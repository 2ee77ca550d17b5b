"""Entity models -> SQLAlchemy Core tables.

One real table per entity, ``<prefix>_<entity>``, with the standard columns (id, created_at,
created_by, updated_at, updated_by, version) and one typed column per field. A child table gets
its own table ``<parent table>__<field>`` with ``parent_id`` (cascade delete) and ``idx`` for row
order; child tables nest. Field columns are nullable in the database -- "required" is enforced by
validation -- so adding a required field to a table that already has rows never fails.
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import JSONType
from engine.types import ExactDecimal, UTCDateTime

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")   # SQLite autoincrements INTEGER only
MAX_IDENT = 63                                                     # PostgreSQL identifier limit


def column_type(ftype: str, spec: dict):
    if ftype == "computed":
        ftype = spec.get("result", "text")
    if ftype == "text":
        return sa.String(spec.get("max_length") or 255)
    if ftype == "long_text":
        return sa.Text()
    if ftype == "integer":
        return sa.BigInteger()
    if ftype == "decimal":
        return ExactDecimal(spec.get("precision") or 18, spec.get("scale") if spec.get("scale") is not None else 2)
    if ftype == "boolean":
        return sa.Boolean()
    if ftype == "date":
        return sa.Date()
    if ftype == "datetime":
        return UTCDateTime()
    if ftype == "select":
        return sa.String(64)
    if ftype == "email":
        return sa.String(254)
    if ftype == "phone":
        return sa.String(32)
    if ftype in {"multi_select", "json", "attachment"}:
        return JSONType
    if ftype == "link":
        return ID_TYPE
    raise ValueError(f"no column type for field type `{ftype}`")


def _ident(name: str) -> str:
    if len(name) <= MAX_IDENT:
        return name
    import hashlib
    return name[: MAX_IDENT - 9] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]


def build_tables(model, entity, table_name: str, table_names: dict[str, str]) -> None:
    """Create ``entity.table`` (and its child tables) on ``model.metadata``.

    ``table_names`` maps every entity's full key to its table name, so links can name their
    target's table before that table object exists.
    """
    md = model.metadata
    cols: list = [sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True)]
    indexes: list = []
    if entity.is_child:
        cols += [
            sa.Column("parent_id", ID_TYPE, sa.ForeignKey(f"{entity.parent.table.name}.id", ondelete="CASCADE"),
                      nullable=False),
            sa.Column("idx", sa.Integer, nullable=False, default=0),
        ]
        indexes.append(sa.Index(_ident(f"ix_{table_name}_parent"), "parent_id", "idx"))
    else:
        cols += [
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("created_by", sa.BigInteger),
            sa.Column("updated_at", UTCDateTime(), nullable=False),
            sa.Column("updated_by", sa.BigInteger),
            sa.Column("version", sa.Integer, nullable=False, default=1),
        ]
        indexes.append(sa.Index(_ident(f"ix_{table_name}_created_by"), "created_by"))
    for f in entity.column_fields:
        ctype = column_type(f.type, f.spec)
        args = []
        if f.type == "link":
            ondelete = {"cascade": "CASCADE", "set_null": "SET NULL"}.get(f.spec.get("on_delete", "restrict"))
            args.append(sa.ForeignKey(f"{table_names[f.target]}.id", ondelete=ondelete))
        if f.sensitive:
            # ciphertext in the field's column, a keyed hash beside it for exact-match search
            ctype = sa.Text()
            cols.append(sa.Column(f"{f.key}__bidx", sa.String(64)))
            indexes.append(sa.Index(_ident(f"ix_{table_name}_{f.key}__bidx"), f"{f.key}__bidx"))
        cols.append(sa.Column(f.key, ctype, *args, nullable=True))
        if f.unique and not entity.is_child:
            target_col = f"{f.key}__bidx" if f.sensitive else f.key
            indexes.append(sa.Index(_ident(f"uq_{table_name}_{f.key}"), target_col, unique=True))
        elif f.type == "link" or f.spec.get("index"):
            indexes.append(sa.Index(_ident(f"ix_{table_name}_{f.key}"), f.key))
    for i, ix in enumerate(entity.spec.get("indexes", [])):
        names = ix["fields"]
        prefix = "uq" if ix.get("unique") else "ix"
        indexes.append(sa.Index(_ident(f"{prefix}_{table_name}_{'_'.join(names)}"), *names, unique=bool(ix.get("unique"))))
    entity.table = sa.Table(table_name, md, *cols, *indexes)
    for f in entity.child_fields:
        build_tables(model, f.children, _ident(f"{table_name}__{f.key}"), table_names)
