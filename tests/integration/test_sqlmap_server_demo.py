"""``epos-bridge db init --demo --adapter sqlmap --mapping ospos_mysql --db mysql://…`` on a real
MariaDB: OSPOS's tables, the bridge's, and the demo venue, served at once; a database that is
not empty is refused, naming why, and left as it was."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from epos_bridge.adapters.sqlmap.factory import SqlMapFactory
from epos_bridge.adapters.sqlmap.mapping import load
from epos_bridge.adapters.sqlmap.setup import AttachError
from epos_bridge.ports import ServerLocation
from epos_bridge.services.pos_calls import PosCalls
from tests.helpers.contract import rpc_over
from tests.helpers.db_servers import mariadb_server, mariadb_url  # noqa: F401 - fixtures, found by name

pytestmark = pytest.mark.timeout(120)


def location_of(url: str) -> ServerLocation:
    full = make_url(url)
    return ServerLocation(full._replace(password=None).render_as_string(hide_password=False)).with_password(
        full.password
    )


async def test_the_demo_venue_goes_into_an_empty_server_database_and_is_served(mariadb_url: str) -> None:  # noqa: F811
    factory = SqlMapFactory(load("ospos_mysql"))
    lines = factory.init(location_of(mariadb_url), demo=True)
    assert any("attached for the mapping ospos_mysql" in line for line in lines), lines
    assert str(make_url(mariadb_url).password) not in "\n".join(lines)
    pos = PosCalls(factory.open(location_of(mariadb_url)))
    try:
        rpc = rpc_over(pos)
        orders = (await rpc("SearchOrdersV1", {}))["result"]["data"]
        tables = (await rpc("SearchTablesV1", {}))["result"]["data"]
        assert orders and tables
        bill = orders[0]
        assert bill["totalAmount"]["value"] > 0 and bill["items"]
    finally:
        await pos.close()

    with pytest.raises(AttachError, match="not empty"):
        factory.init(location_of(mariadb_url), demo=True)
    engine = sa.create_engine(mariadb_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM ospos_sales_suspended")).scalar() == len(orders)
    finally:
        engine.dispose()
