"""Importers of real event logs: XES (plain or gzip), CSV and Parquet, plus shipped datasets.

>>> from allframe_lab.io import import_log, dataset_path, process_log_model
>>> from allframe_lab.store import InMemoryEventStore
>>> store = InMemoryEventStore()
>>> import_log(dataset_path("running-example"), store).events
42

``import allframe_lab.io`` is cheap: pyarrow, pandas and tqdm are imported when a log is read.
"""

from allframe_lab.io.datasets import DATASETS, Dataset, dataset_path
from allframe_lab.io.importer import ImportResult, detect_format, import_log, read_log
from allframe_lab.io.mapping import LogMapping
from allframe_lab.io.process_log import process_log_model
from allframe_lab.io.xes import iter_xes, iter_xes_traces

__all__ = [
    "DATASETS",
    "Dataset",
    "ImportResult",
    "LogMapping",
    "dataset_path",
    "detect_format",
    "import_log",
    "iter_xes",
    "iter_xes_traces",
    "process_log_model",
    "read_log",
]
