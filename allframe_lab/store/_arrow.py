"""Arrow helpers shared by the stores' bulk paths (pyarrow is imported lazily by callers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from allframe_lab.store.port import ARROW_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from allframe_lab.store.records import RecordedEvent

REQUIRED = ARROW_COLUMNS[:4]


def import_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("stream_id", pa.string()),
            ("type", pa.string()),
            ("data", pa.string()),
            ("occurred_at", pa.timestamp("us", tz="UTC")),
            ("metadata", pa.string()),
            ("schema_version", pa.int32()),
            ("event_id", pa.string()),
        ]
    )


def normalize_import_table(table: pa.Table) -> pa.Table:
    """Check the required columns, add the optional ones, cast to the import schema.

    Raises
    ------
    ValueError
        If a required column is missing or has nulls.
    """
    import pyarrow as pa

    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ValueError(
            f"append_arrow needs columns {list(REQUIRED)}; missing {missing} "
            f"(got {table.column_names})"
        )
    n = table.num_rows
    schema = import_schema()
    cols = []
    for fld in schema:
        if fld.name in table.column_names:
            col = table.column(fld.name)
            if fld.name in REQUIRED and col.null_count:
                raise ValueError(f"column {fld.name!r} has {col.null_count} null values")
            if (fld.name == "occurred_at" and pa.types.is_timestamp(col.type)
                    and col.type.tz is None):
                col = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
            cols.append(col.cast(fld.type))
        elif fld.name == "metadata":
            cols.append(pa.array(["{}"] * n, pa.string()))
        elif fld.name == "schema_version":
            cols.append(pa.array([1] * n, pa.int32()))
        else:
            cols.append(pa.nulls(n, pa.string()))
    return pa.Table.from_arrays(cols, schema=schema)


def events_to_arrow(events: Sequence[RecordedEvent]) -> pa.Table:
    """Recorded events as an Arrow table shaped like the DuckDB ``events`` table."""
    import pyarrow as pa

    return pa.table(
        {
            "position": pa.array([e.position for e in events], pa.int64()),
            "stream_id": pa.array([e.stream_id for e in events], pa.string()),
            "version": pa.array([e.version for e in events], pa.int32()),
            "event_id": pa.array([str(e.event_id) for e in events], pa.string()),
            "type": pa.array([e.type for e in events], pa.string()),
            "schema_version": pa.array([e.schema_version for e in events], pa.int32()),
            "data": pa.array([json.dumps(e.data) for e in events], pa.string()),
            "metadata": pa.array([json.dumps(e.metadata) for e in events], pa.string()),
            "occurred_at": pa.array([e.occurred_at for e in events],
                                    pa.timestamp("us", tz="UTC")),
            "recorded_at": pa.array([e.recorded_at for e in events],
                                    pa.timestamp("us", tz="UTC")),
        }
    )
