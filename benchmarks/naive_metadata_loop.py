"""The loop a user would write instead of pendo-assets: the baseline of `bench_sync_cli.py`.

    PENDO_INTEGRATION_KEY=... python benchmarks/naive_metadata_loop.py URL DAY WAREHOUSE_URL

Reads one UTC day of `bench_cli.visitors` with `pandas.read_sql`, turns it into records with
`to_dict('records')` and posts them to Pendo's visitor custom-value endpoint in 1,000-record
batches, one after another over one httpx client, raising on the first non-2xx answer. It keeps
no state, so every run re-sends every row. Run as its own process, so the benchmark sees its
start-up, wall time, CPU and peak RSS as a user's would be.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import sqlalchemy as sa

BATCH = 1000
PATH = "/api/v1/metadata/visitor/custom/value"
QUERY = sa.text(
    "SELECT id, plan, seats, is_trial FROM bench_cli.visitors "
    "WHERE updated_at >= :start AND updated_at < :end"
)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, day, warehouse_url = argv
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as connection:
        frame = pd.read_sql(
            QUERY, connection, params={"start": start, "end": start + timedelta(days=1)}
        )
    engine.dispose()
    records = frame.to_dict("records")
    headers = {"x-pendo-integration-key": os.environ["PENDO_INTEGRATION_KEY"]}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for first in range(0, len(records), BATCH):
            body = [
                {
                    "visitorId": r["id"],
                    "values": {"plan": r["plan"], "seats": r["seats"], "is_trial": r["is_trial"]},
                }
                for r in records[first : first + BATCH]
            ]
            http.post(PATH, params={"create": "true"}, json=body).raise_for_status()
    print(f"sent {len(records)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
