"""Moving an MLflow tracking store into another database, e.g. a team's SQLite store into PostgreSQL:
``jaxbp migrate-store SRC DST``.

What it is for: MLflow has no command that copies one database store into another (``mlflow migrate-filestore``
only reads the old file store into SQLite). ``migrate`` creates DST's schema through MLflow's own store (its
alembic migrations), checks that SRC is at the same schema revision, and copies every table's rows as they are,
ids included, in foreign-key order and in one transaction; on PostgreSQL it then moves the sequences of integer
keys past the copied ids, so that new experiments get new ids. Runs, params, full metric histories, tags,
experiments, datasets, registered models and traces all move; so do the artifact URIs.
What it is not: no artifact copying (the artifacts stay where they are, and whoever reads DST must reach them
there), no schema upgrade of SRC (``mlflow db upgrade SRC``), no merging into a store that already holds runs,
no copying while a server writes to SRC (stop it first).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from jaxbp.sweeps.database import display_uri
from jaxbp.sweeps.tracking import check_reachable

BATCH = 5000  # rows per INSERT round trip
BOOKKEEPING = {"alembic_version"}  # alembic's own table: DST's is written by MLflow's migrations
EMPTY = {"experiments": 1, "workspaces": 1}  # what a fresh store holds: the Default experiment, the default workspace


def store_uri(text: str) -> str:
    """A store URI; a plain path is taken as a SQLite store there."""
    return text if "://" in text else f"sqlite:///{Path(text).expanduser().resolve()}"


def _sqlite_file(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]).expanduser() if uri.startswith("sqlite:///") else None


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(getattr(err, "orig", None) or err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def head_revision() -> str:
    """The schema revision the installed MLflow writes (the head of its alembic migrations)."""
    import mlflow
    from alembic.script import ScriptDirectory

    return ScriptDirectory(os.path.join(os.path.dirname(mlflow.__file__), "store", "db_migrations")).get_current_head()


def revision(engine: sa.Engine) -> str | None:
    """The alembic revision of the MLflow store at ``engine``; None if it has none (no MLflow store there)."""
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def held(engine: sa.Engine) -> dict[str, int]:
    """Rows per table of the store at ``engine``, beyond what a fresh store holds (empty: nothing to lose)."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        counts = {t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in metadata.sorted_tables if t.name not in BOOKKEEPING}
    return {name: n for name, n in counts.items() if n > EMPTY.get(name, 0)}


def check_source(src: str, head: str) -> sa.Engine:
    """SRC's engine, once SRC is known to be an MLflow store at schema revision ``head``."""
    file = _sqlite_file(src)
    if file is not None and not file.is_file():
        raise ValueError(f"no SQLite store at {file}")
    check_reachable(src)
    engine = sa.create_engine(src)
    found = revision(engine)
    if found is None:
        raise ValueError(f"{display_uri(src)} is not an MLflow tracking store (it has no alembic_version table)")
    if found != head:
        raise ValueError(f"{display_uri(src)} is at schema revision {found}, this MLflow writes {head}: back it up, "
                         f"then run `mlflow db upgrade {display_uri(src)}` first")
    return engine


def check_target(dst: str, head: str) -> None:
    """Refuse a DST that holds anything a copy would replace, or whose schema is at another revision."""
    file = _sqlite_file(dst)
    check_reachable(dst)
    if file is not None and not file.exists():
        return  # a new SQLite file: nothing there yet (and none made by looking)
    engine = sa.create_engine(dst)
    try:
        if not sa.inspect(engine).get_table_names():
            return
        found = revision(engine)
        if found not in (None, head):
            raise ValueError(f"{display_uri(dst)} is at schema revision {found}, this MLflow writes {head}: "
                             f"migrate into an empty database")
        if rows := held(engine):
            first = sorted(rows, key=lambda name: (name not in ("runs", "experiments"), -rows[name]))
            what = ", ".join(f"{rows[name]} rows in {name}" for name in first[:3])
            raise ValueError(f"{display_uri(dst)} already holds data ({what}): migrate into an empty database; "
                             f"nothing was copied")
    finally:
        engine.dispose()


def create_schema(dst: str, artifact_root: str) -> None:
    """DST's tables, made by MLflow's own store (it runs MLflow's alembic migrations on an empty database); its
    INFO lines are kept off the terminal."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    logger = logging.getLogger("mlflow.store.db.utils")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        SqlAlchemyStore(dst, artifact_root).engine.dispose()
    except (MlflowException, SQLAlchemyError) as err:
        raise ValueError(f"could not create MLflow's tables in {display_uri(dst)}: {_one_line(err)}") from None
    finally:
        logger.setLevel(level)


def reset_sequences(connection: sa.Connection, tables) -> None:
    """On PostgreSQL, move each integer key's sequence past the largest id copied (else the next insert fails)."""
    if connection.dialect.name != "postgresql":
        return  # SQLite and MySQL take explicit ids into account themselves
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            sequence = connection.execute(sa.select(sa.func.pg_get_serial_sequence(table.name, column.name)))
            if (name := sequence.scalar()) is not None:
                largest = sa.select(sa.func.max(column)).scalar_subquery()
                connection.execute(sa.select(sa.func.setval(name, sa.func.coalesce(largest, 0) + 1, False)))


def copy_rows(source: sa.Engine, target: sa.Engine, progress=None) -> dict[str, int]:
    """Every table's rows from ``source`` into the (fresh) store ``target``, in one transaction: its own
    Default experiment and workspace are replaced by the source's. Returns rows copied per table."""
    src_md, dst_md = sa.MetaData(), sa.MetaData()
    src_md.reflect(source)
    dst_md.reflect(target)
    tables = [t for t in dst_md.sorted_tables if t.name not in BOOKKEEPING]
    if missing := sorted(set(src_md.tables) - set(dst_md.tables) - BOOKKEEPING):
        raise ValueError(f"the target has no table {missing[0]} (of {len(missing)} missing): same MLflow needed")
    copied = {}
    with source.connect() as reader, target.begin() as writer:
        for table in reversed(tables):
            writer.execute(table.delete())
        for table in tables:
            if table.name not in src_md.tables:
                continue
            src = src_md.tables[table.name]
            columns = [c.name for c in table.columns if c.name in src.c]
            total = reader.execute(sa.select(sa.func.count()).select_from(src)).scalar_one()
            task = progress.add_task(table.name, total=total) if progress is not None and total else None
            result = reader.execution_options(stream_results=True).execute(sa.select(*(src.c[c] for c in columns)))
            copied[table.name] = 0
            try:
                while rows := result.fetchmany(BATCH):
                    writer.execute(table.insert(), [dict(zip(columns, row)) for row in rows])
                    copied[table.name] += len(rows)
                    if task is not None:
                        progress.advance(task, len(rows))
            except SQLAlchemyError as err:
                raise ValueError(f"copying table {table.name} failed, nothing was copied: {_one_line(err)}") from None
        reset_sequences(writer, tables)
    return copied


def migrate(src: str, dst: str, progress=None) -> dict[str, int]:
    """Copy the MLflow store ``src`` into the empty database ``dst`` (see the module's docstring); returns rows
    per table. Raises ValueError in one line, with nothing copied, when it cannot."""
    src, dst = store_uri(src), store_uri(dst)
    if src == dst:
        raise ValueError("SRC and DST are the same store")
    for uri in (src, dst):
        if uri.startswith(("http://", "https://")):
            raise ValueError(f"{uri} is a tracking server, not a database: give sqlite:///… (or a .db file), "
                             f"postgresql+psycopg://…")
    try:
        return _migrate(src, dst, progress)
    except (SQLAlchemyError, ImportError) as err:  # a driver that is missing, a database that went away
        raise ValueError(f"migrating {display_uri(src)} to {display_uri(dst)} failed: {_one_line(err)}") from None


def _migrate(src: str, dst: str, progress) -> dict[str, int]:
    head = head_revision()
    source = check_source(src, head)
    try:
        check_target(dst, head)
        with source.connect() as connection:  # DST's Default experiment is replaced; until then, SRC's location
            default = connection.execute(sa.text("SELECT artifact_location FROM experiments "
                                                 "WHERE experiment_id = 0")).scalar()
        create_schema(dst, default or "./mlruns")  # MLflow's store also verifies that DST is now at ``head``
        target = sa.create_engine(dst)
        try:
            return copy_rows(source, target, progress)
        finally:
            target.dispose()
    finally:
        source.dispose()


def run_migrate(src: str, dst: str) -> int:
    """``jaxbp migrate-store``: the copy with a progress bar per table on a terminal, then one summary line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    src, dst = store_uri(src), store_uri(dst)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not console.is_terminal, transient=True) as progress:
        copied = migrate(src, dst, progress)
    print(f"moved {copied.get('experiments', 0)} experiments, {copied.get('runs', 0)} runs, "
          f"{copied.get('params', 0)} params, {copied.get('metrics', 0)} metric values and {copied.get('tags', 0)} "
          f"tags ({sum(copied.values())} rows in {sum(1 for n in copied.values() if n)} tables) from "
          f"{display_uri(src)} to {display_uri(dst)}")
    print("artifacts stay where they are (their URIs were copied as they are): start the server on DST with the "
          "--artifacts-destination the old one had")
    return 0
