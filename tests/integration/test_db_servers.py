"""The throwaway database servers (tests/helpers/db_servers.py) do what the POS tests rely on:
a URL that connects, databases apart from each other, passwords checked, sessions that can be
killed, data that survives a restart and an owner that may make tables and triggers.

Every test runs on MariaDB and on PostgreSQL, against one server of each for the whole session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from tests.helpers import db_servers
from tests.helpers.db_servers import (  # noqa: F401 - fixtures, found by name
    DbServer,
    ServerUnavailable,
    mariadb_server,
    mariadb_url,
    postgresql_server,
    postgresql_url,
)

ENGINES = ["mariadb", "postgresql"]


@pytest.fixture(params=ENGINES)
def server(request: pytest.FixtureRequest) -> DbServer:
    """The session's server of each kind in turn."""
    started: DbServer = request.getfixturevalue(f"{request.param}_server")
    return started


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each kind in turn (the ``mariadb_url`` / ``postgresql_url`` fixtures)."""
    made: str = request.getfixturevalue(f"{request.param}_url")
    return made


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def scalar(url: str, query: str) -> object:
    with engine_for(url) as engine, engine.connect() as conn:
        return conn.execute(sa.text(query)).scalar_one()


def test_the_url_connects_as_its_owner_to_its_database(url: str) -> None:
    parsed = make_url(url)
    assert parsed.host == "127.0.0.1"
    with engine_for(url) as engine, engine.begin() as conn:
        if engine.dialect.name == "mysql":
            user, database = conn.execute(sa.text("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1), DATABASE()")).one()
        else:
            user, database = conn.execute(sa.text("SELECT current_user, current_database()")).one()
        assert (user, database) == (parsed.username, parsed.database)
        conn.execute(sa.text("CREATE TABLE greeting (id INTEGER PRIMARY KEY, words VARCHAR(40))"))
        conn.execute(sa.text("INSERT INTO greeting VALUES (1, 'hello, till')"))
        assert conn.execute(sa.text("SELECT words FROM greeting WHERE id = 1")).scalar_one() == "hello, till"


def test_a_second_database_is_apart_from_the_first(server: DbServer) -> None:
    first, second = server.create_database(), server.create_database()
    assert make_url(first).database != make_url(second).database
    assert make_url(first).username != make_url(second).username
    with engine_for(first) as engine, engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE only_here (id INTEGER PRIMARY KEY)"))
    with engine_for(second) as engine:
        assert not sa.inspect(engine).has_table("only_here")
    # The first owner may not even connect to the second database.
    trespass = make_url(first).set(database=make_url(second).database).render_as_string(hide_password=False)
    with pytest.raises(sa.exc.OperationalError, match=r"(?i)denied"):
        scalar(trespass, "SELECT 1")


def test_a_wrong_password_is_refused(url: str) -> None:
    wrong = make_url(url).set(password="not-the-password").render_as_string(hide_password=False)
    with pytest.raises(sa.exc.OperationalError, match=r"(?i)access denied|password authentication failed"):
        scalar(wrong, "SELECT 1")
    assert scalar(url, "SELECT 1") == 1


def test_killed_sessions_fail_on_their_next_statement_and_new_ones_work(server: DbServer) -> None:
    url = server.create_database()
    user = make_url(url).username
    assert user is not None
    with engine_for(url) as engine:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            assert server.kill_connections(user) == 1
            with pytest.raises(sa.exc.OperationalError) as killed:
                conn.execute(sa.text("SELECT 1"))
            assert killed.value.connection_invalidated
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 2")).scalar_one() == 2
    assert server.kill_connections(user) == 0


def test_a_restart_keeps_what_was_committed(server: DbServer) -> None:
    url = server.create_database()
    with engine_for(url) as engine, engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE payment (id INTEGER PRIMARY KEY, pence INTEGER NOT NULL)"))
        conn.execute(sa.text("INSERT INTO payment VALUES (1, 1250), (2, 399)"))
    port = server.port
    server.restart()
    assert server.port == port
    assert scalar(url, "SELECT SUM(pence) FROM payment") == 1649


def test_the_owner_may_create_tables_and_triggers(url: str) -> None:
    with engine_for(url) as engine, engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE ticket (id INTEGER PRIMARY KEY, total INTEGER NOT NULL)"))
        conn.execute(sa.text("CREATE TABLE change_log (ticket_id INTEGER NOT NULL)"))
        if engine.dialect.name == "mysql":
            conn.execute(
                sa.text(
                    "CREATE TRIGGER ticket_changed AFTER UPDATE ON ticket FOR EACH ROW"
                    " INSERT INTO change_log (ticket_id) VALUES (NEW.id)"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION log_ticket() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$ BEGIN INSERT INTO change_log (ticket_id) VALUES (NEW.id); RETURN NEW; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER ticket_changed AFTER UPDATE ON ticket FOR EACH ROW EXECUTE FUNCTION log_ticket()"
                )
            )
        conn.execute(sa.text("INSERT INTO ticket VALUES (7, 1000)"))
        conn.execute(sa.text("UPDATE ticket SET total = 1200 WHERE id = 7"))
        assert conn.execute(sa.text("SELECT ticket_id FROM change_log")).scalars().all() == [7]


def test_the_server_listens_on_loopback_only_and_keeps_no_binary_log(server: DbServer) -> None:
    if server.engine == "mysql":
        assert scalar(server.admin_url(), "SELECT @@bind_address") == "127.0.0.1"
        assert scalar(server.admin_url(), "SELECT @@log_bin") == 0
        assert int(str(scalar(server.admin_url(), "SELECT @@max_connections"))) >= 50
    else:
        assert scalar(server.admin_url(), "SHOW listen_addresses") == "127.0.0.1"
        assert int(str(scalar(server.admin_url(), "SHOW max_connections"))) >= 50


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root test process hands the server to another account")
def test_as_root_the_server_runs_unprivileged_in_an_owner_only_folder(server: DbServer) -> None:
    process = server._process
    assert process is not None
    status = Path(f"/proc/{process.pid}/status").read_text(encoding="utf-8")
    real, effective, *_ = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert real == effective != "0"
    assert server.folder.stat().st_uid == int(real)
    assert server.folder.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("required", [True, False])
def test_missing_binaries_fail_where_required_and_skip_elsewhere(
    required: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed() -> DbServer:
        raise ServerUnavailable("mariadbd", "mariadb-server")

    if required:
        monkeypatch.setenv(db_servers.REQUIRED_ENV, "required")
    else:
        monkeypatch.delenv(db_servers.REQUIRED_ENV, raising=False)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match=r"'mariadbd' not found: install the Debian package 'mariadb-server'"):
        db_servers._started(not_installed)
