"""IPython extension: ``%load_ext allframe_lab`` registers rich reprs and three magics.

==================================== ===================================================
``%allframe``                        the models and stores in the namespace (a table)
``%allframe_flow MODEL``             the event-flow graph of a Model (or App, Workbench)
``%%allframe_sql [APP]``             run the cell as SQL over the store's ``events`` table
                                     and projection tables, return a DataFrame
==================================== ===================================================
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_MAGICS = ("allframe", "allframe_flow", "allframe_sql")


def _resolve(ip: Any, name: str, what: str) -> Any:
    name = name.strip()
    if not name:
        raise ValueError(f"name the variable holding the {what}, e.g. %allframe_flow bank")
    try:
        return eval(name, ip.user_ns)  # a variable or attribute path such as wb.app
    except Exception as exc:
        raise NameError(f"{name!r} is not defined in the notebook: {exc}") from None


def _app_of(value: Any) -> Any:
    from allframe_lab.runtime import App

    if isinstance(value, App):
        return value
    app = getattr(value, "app", None)
    if isinstance(app, App):
        return app
    raise TypeError(f"expected an App or Workbench, got {type(value).__name__}")


def load_ipython_extension(ipython: Any) -> None:
    """Register the formatters of :mod:`allframe_lab.notebook.reprs` and the magics.

    Called by ``%load_ext allframe_lab`` (through ``allframe_lab.load_ipython_extension``);
    loading twice is harmless. ``tests/notebook_layer/test_magics.py`` runs it in a real
    ``InteractiveShell``.
    """
    from allframe_lab.notebook.reprs import register_formatters

    register_formatters(ipython)

    def allframe(line: str = "") -> Any:
        """Show the models and stores in the notebook's namespace."""
        from allframe_lab.notebook.sidebar import sidebar_state

        return sidebar_state(ipython.user_ns)

    def allframe_flow(line: str) -> Any:
        """``%allframe_flow MODEL``: the event-flow graph of a Model, App or Workbench."""
        from allframe_lab.model import Model
        from allframe_lab.notebook.graphs import event_flow

        value = _resolve(ipython, line, "model")
        model = value if isinstance(value, Model) else _app_of(value).model
        return event_flow(model)

    def allframe_sql(line: str, cell: str) -> Any:
        """``%%allframe_sql [APP]``: run the cell as SQL against an App's store."""
        if line.strip():
            app = _app_of(_resolve(ipython, line, "App"))
        else:
            from allframe_lab.notebook.sidebar import _unwrap  # first App/Workbench found
            from allframe_lab.runtime import App

            apps = [v if isinstance(v, App) else v.app
                    for k, v in ipython.user_ns.items()
                    if not k.startswith("_") and _unwrap(v)[1] is not None
                    and (isinstance(v, App) or isinstance(getattr(v, "app", None), App))]
            if not apps:
                raise NameError("no App or Workbench in the notebook: %%allframe_sql APP")
            app = apps[0]
        from allframe_lab.notebook._sql import frame

        return frame(app, cell)

    ipython.register_magic_function(allframe, "line", "allframe")
    ipython.register_magic_function(allframe_flow, "line", "allframe_flow")
    ipython.register_magic_function(allframe_sql, "cell", "allframe_sql")


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the formatters and magics :func:`load_ipython_extension` added."""
    from allframe_lab.notebook.reprs import unregister_formatters

    unregister_formatters(ipython)
    for kind in ("line", "cell"):
        table = ipython.magics_manager.magics[kind]
        for name in _MAGICS:
            table.pop(name, None)
