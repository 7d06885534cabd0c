"""The array namespaces the printed kernel body runs against, per framework (source lines).

The kernel body printed from derivation ``stable`` (``symkl.codegen.array_kernels``)
uses ``xp.asarray, clip, errstate, floor, full_like, isfinite, ldexp, maximum, where,
table_rows`` and the names ``exp, expm1, log, log1p``.  These preludes provide
them for PyTorch and JAX; :func:`symkl.frameworks.array_kernels` executes them
at run time and ``symkl export`` writes them into its standalone modules, so
both run the same text.  (The NumPy prelude is ``symkl.codegen.NUMPY_PRELUDE``.)

Examples
--------
>>> "import torch" in ARRAY_PRELUDES["torch"]
True
"""

from __future__ import annotations

__all__ = ["ARRAY_PRELUDES"]

ARRAY_PRELUDES: dict[str, list[str]] = {
    "torch": [
        "import contextlib",
        "from types import SimpleNamespace",
        "",
        "import torch",
        "from torch import exp, expm1, log, log1p  # names in the printed expressions",
        "",
        "",
        "def _tensor(value, like):",
        "    if isinstance(value, torch.Tensor):",
        "        return value",
        "    return torch.as_tensor(value, dtype=like.dtype, device=like.device)",
        "",
        "",
        "def _where(condition, a, b):",
        "    like = a if isinstance(a, torch.Tensor) else b",
        "    if not isinstance(like, torch.Tensor):",
        "        like = condition.to(torch.float64)",
        "    return torch.where(condition, _tensor(a, like), _tensor(b, like))",
        "",
        "",
        "def _maximum(a, b):",
        "    return torch.maximum(a, _tensor(b, a))",
        "",
        "",
        "_TABLES = {}",
        "",
        "",
        "def _table_rows(table, index):",
        "    if not isinstance(table, torch.Tensor):  # rows as lists: a constant when traced",
        "        key = (id(table), index.device)",
        "        if type(index) is not torch.Tensor:  # traced (torch.compile): made in the graph",
        "            table = torch.tensor(table, dtype=torch.float64, device=index.device)",
        "        elif key in _TABLES:",
        "            table = _TABLES[key]",
        "        else:",
        "            table = torch.tensor(table, dtype=torch.float64, device=index.device)",
        "            _TABLES[key] = table",
        "    rows = table.to(index.device)[index.long()]",
        "    return rows.movedim(-1, 0)",
        "",
        "",
        "xp = SimpleNamespace(",
        "    asarray=lambda rows: torch.tensor(rows, dtype=torch.float64),",
        "    clip=torch.clamp, errstate=lambda **_: contextlib.nullcontext(), floor=torch.floor,",
        "    full_like=torch.full_like, isfinite=torch.isfinite, maximum=_maximum, nan=torch.nan,",
        "    where=_where,",
        "    table_rows=_table_rows,",
        "    ldexp=lambda value, n: torch.ldexp(_tensor(value, n), n),",
        ")",
    ],
    "jax": [
        "import contextlib",
        "from types import SimpleNamespace",
        "",
        "import jax",
        "import jax.numpy as jnp",
        "from jax.numpy import exp, expm1, log, log1p  # names in the printed expressions",
        "",
        "",
        "def _table_rows(table, index):",
        "    return jnp.moveaxis(jnp.asarray(table)[index.astype(jnp.int32)], -1, 0)",
        "",
        "",
        "xp = SimpleNamespace(",
        "    asarray=lambda rows: jnp.asarray(rows, dtype=jnp.float64),",
        "    clip=jnp.clip, errstate=lambda **_: contextlib.nullcontext(), floor=jnp.floor,",
        "    full_like=jnp.full_like, isfinite=jnp.isfinite, maximum=jnp.maximum, nan=jnp.nan,",
        "    where=jnp.where, table_rows=_table_rows,",
        "    ldexp=lambda value, n: jnp.ldexp(value, jnp.asarray(n).astype(jnp.int32)),",
        ")",
    ],
}
