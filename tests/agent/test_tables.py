"""Loading the workplace database: both directory layouts, missing cells, caching, and named errors."""

from __future__ import annotations

import shutil

import pytest

from m2rl_slime.agent.cli import demo_csv_dir
from m2rl_slime.agent.tables import TABLE_FILES, load_db, read_db
from m2rl_slime.errors import ConfigError


def test_shipped_data_loads_with_pandas_semantics(db, wp):
    assert {name: len(t.rows) for name, t in db.tables.items()} == wp.table_sizes
    crm = db.tables["crm"]
    customer = next(r for r in crm.rows if r[crm.index("customer_name")] == wp.customer[0])
    assert customer[crm.index("customer_phone")] is None  # an empty cell is NaN in pandas, None here
    notes = crm.rows[0][crm.index("notes")]
    assert notes.endswith(". ")  # no stripping, as pandas
    analytics = db.tables["analytics"]
    assert {r[analytics.index("user_engaged")] for r in analytics.rows} == {True, False}
    assert len(db.directory) == wp.directory_size and wp.person[1] in db.directory


def test_processed_dir_layout_and_cache(csv_dir, db):
    assert load_db(csv_dir) is db
    flat = read_db(f"{csv_dir}/processed")  # the user may point at csv_data/processed (directory in ../raw)
    assert flat.directory == db.directory and flat.tables["emails"].rows == db.tables["emails"].rows


def test_demo_database_has_every_table():
    demo = read_db(demo_csv_dir())
    assert all(len(t.rows) >= 5 for t in demo.tables.values()) and len(demo.directory) >= 5
    for stem, (name, columns) in TABLE_FILES.items():
        assert demo.tables[name].columns == columns, stem


def test_missing_table_and_column_are_named(tmp_path, csv_dir):
    with pytest.raises(ConfigError, match="no emails.csv"):
        read_db(str(tmp_path))
    shutil.copytree(f"{csv_dir}/processed", tmp_path / "processed")
    shutil.copytree(f"{csv_dir}/raw", tmp_path / "raw")
    bad = tmp_path / "processed" / "project_tasks.csv"
    bad.write_text("task_id,task_name\n1,x\n")
    with pytest.raises(ConfigError, match="project_tasks.csv: missing column"):
        read_db(str(tmp_path))
    with pytest.raises(ConfigError, match="not a directory"):
        read_db(str(tmp_path / "nope"))
