"""Real event logs shipped inside the package (see ``datasets/README.md`` for licences)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType

__all__ = ["DATASETS", "Dataset", "dataset_path"]


@dataclass(frozen=True, slots=True)
class Dataset:
    """A shipped event log and its known counts.

    Attributes
    ----------
    name : str
        The name to pass to :func:`dataset_path`.
    filename : str
    traces, events, activities : int
        Cases (= streams after import), events, and distinct ``concept:name`` values
        (= event types), as published with the data.
    description : str
    citation : str
        The source to cite; ``licence`` its licence.
    """

    name: str
    filename: str
    traces: int
    events: int
    activities: int
    description: str
    citation: str
    licence: str


#: The shipped logs by name, with the counts that the tests check after import.
DATASETS = MappingProxyType({
    d.name: d
    for d in (
        Dataset(
            "helpdesk", "helpdesk.xes.gz", 4_580, 21_348, 14,
            "ticketing process of the help desk of an Italian software company",
            "Polato, M. (2017). Dataset belonging to the help desk log of an Italian Company. "
            "Mendeley Data, v1, doi:10.17632/39bp3vv62t.1",
            "CC BY 4.0",
        ),
        Dataset(
            "bpic2012", "bpic2012.xes.gz", 13_087, 262_200, 24,
            "BPI Challenge 2012: loan and overdraft applications at a Dutch financial "
            "institute (Oct 2011 - Mar 2012)",
            "van Dongen, B.F. (2012). BPI Challenge 2012. 4TU.ResearchData, "
            "doi:10.4121/uuid:3926db30-f712-4394-aebc-75976070e91f",
            "CC BY 4.0",
        ),
        Dataset(
            "running-example", "running-example.xes", 6, 42, 8,
            "the small textbook example log of process mining (6 cases)",
            "van der Aalst, W.M.P., Process Mining: Data Science in Action (the book's "
            "example log)",
            "not stated (companion material of the book)",
        ),
    )
})


def dataset_path(name: str, /) -> Path:
    """The path of a shipped event log.

    Parameters
    ----------
    name : str
        ``"helpdesk"``, ``"bpic2012"`` or ``"running-example"``.

    Returns
    -------
    pathlib.Path
        The file inside the installed package.

    Raises
    ------
    KeyError
        If there is no dataset of that name (the message lists the names).

    Examples
    --------
    >>> dataset_path("running-example").name
    'running-example.xes'
    >>> DATASETS["bpic2012"].events
    262200
    """
    try:
        ds = DATASETS[name]
    except KeyError:
        raise KeyError(f"no dataset {name!r}; the shipped datasets are "
                       f"{', '.join(sorted(DATASETS))}") from None
    resource = files("allframe_lab.io").joinpath("datasets", ds.filename)
    path = Path(str(resource))
    if not path.is_file():  # pragma: no cover - a broken installation
        raise FileNotFoundError(f"dataset {name!r} is missing from the installation: {path}")
    return path
