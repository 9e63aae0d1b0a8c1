"""Token Explorer: look inside a causal language model one token at a time.

From Python (docs/python.md):

    import explorer
    with explorer.open(model="tiny") as ex:
        t = ex.trace("The capital of France is", max_new_tokens=8)

`import explorer` alone loads nothing else: the API (explorer.api) is imported on first
use of one of its names, so the app and the commands pay nothing for it.
"""

_API = ("open", "Model", "TraceResult", "Positions")

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        import explorer.api

        return getattr(explorer.api, name)
    if name == "errors":  # explorer.errors.ExplorerError after a bare `import explorer`
        import explorer.errors

        return explorer.errors
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")
