"""``epos-bridge db init --demo --adapter sqlmap --mapping … --db <url>`` on real servers (OSPOS
on MariaDB, Floreant on PostgreSQL): the POS's tables, the bridge's, and the demo venue, served
at once; a database that is
not empty is refused, naming why, and left as it was."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from epos_bridge.adapters.sqlmap.factory import SqlMapFactory
from epos_bridge.adapters.sqlmap.mapping import load
from epos_bridge.adapters.sqlmap.setup import AttachError
from epos_bridge.services.pos_calls import PosCalls
from tests.helpers.contract import rpc_over
from tests.helpers.db_servers import (  # noqa: F401 - fixtures, found by name
    mariadb_server,
    mariadb_url,
    postgresql_server,
    postgresql_url,
)
from tests.helpers.server_till import location_of

pytestmark = pytest.mark.timeout(120)


DEMOS = [
    pytest.param("mariadb_url", "ospos_mysql", "ospos_sales_suspended", id="ospos_mysql-mariadb"),
    pytest.param("postgresql_url", "floreant_pg", "TICKET", id="floreant_pg-postgresql"),
]


@pytest.mark.parametrize(("database", "mapping", "bills"), DEMOS)
async def test_the_demo_venue_goes_into_an_empty_server_database_and_is_served(
    request: pytest.FixtureRequest, database: str, mapping: str, bills: str
) -> None:
    """``epos-bridge db init --demo --adapter sqlmap --mapping <mapping> --db <url>``."""
    url = str(request.getfixturevalue(database))
    factory = SqlMapFactory(load(mapping))
    lines = factory.init(location_of(url), demo=True)
    assert any(f"attached for the mapping {mapping}" in line for line in lines), lines
    assert str(make_url(url).password) not in "\n".join(lines)
    pos = PosCalls(factory.open(location_of(url)))
    try:
        rpc = rpc_over(pos)
        orders = (await rpc("SearchOrdersV1", {}))["result"]["data"]
        tables = (await rpc("SearchTablesV1", {}))["result"]["data"]
        assert orders and tables
        assert all(o["totalAmount"]["value"] > 0 and o["items"] for o in orders)
        for order in orders:
            assert (await rpc("GetOrderByIdV1", {"orderId": order["id"]}))["result"] == order
    finally:
        await pos.close()

    with pytest.raises(AttachError, match="not empty"):
        factory.init(location_of(url), demo=True)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {bills}")).scalar() == len(orders)
    finally:
        engine.dispose()
