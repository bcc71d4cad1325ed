"""Which option keys a piece of code reads, found in its source with ``ast``: validation keeps no list.

BasicSR reads its option dict by hand (``opt['train']['total_iter']``, ``train_opt.get('ema_decay')``,
``'use_tb_logger' in opt['logger']``), so the keys a model, dataset or the training loop accepts
are written in their source. This module parses that source and returns, for each *path* (a
tuple of keys from the option file's root, ``('train',)``, ``('logger', 'wandb')``), the keys read
there. ``ANY`` (``'*'``) stands for any key: a loop ``for phase, dataset in opt['datasets'].items()``
reads ``('datasets', '*')``, and a section passed on as ``**kwargs`` to a function that takes
``**kwargs`` accepts any key.

What is followed:
* a class (model, dataset): every method of the class and of its bases (torch's excluded), with
  ``opt`` and ``self.opt`` as the root and ``self.x = <a section>`` carried across methods;
* a function (``basicsr.train.train_pipeline``): its body with ``opt`` as the root, and, through
  the calls it makes, every basicsr / realesrgan_ext function and class it calls, with each
  parameter bound to the section passed in (``build_dataloader(train_set, dataset_opt, ...)``).
Names bound by assignment (``train_opt = self.opt['train']``), ``deepcopy`` / ``dict`` / ``.copy()``
and ``x or {}`` keep their section. Anything computed (``f'pretrain_{net}'``) is not seen.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

Path = tuple[str, ...]
Reads = dict[Path, frozenset[str]]

ANY = "*"
ROOT_NAME = "opt"  # BasicSR's (and this project's) name for the whole option dict
DICT_READS = frozenset({"get", "pop", "setdefault"})
PASS_THROUGH = frozenset({"deepcopy", "copy", "dict", "sorted", "list"})
FOLLOWED_PACKAGES = ("basicsr", "realesrgan_ext")
MAX_CALL_DEPTH = 6  # calls followed from an entry point (recursive helpers such as dict2str stop here)
SKIPPED_PACKAGES = ("builtins", "torch", "typing", "abc")
METRIC_DATA = "metric_data"  # the dict BasicSR's validation fills (img, img2) and passes to each metric


def _package(obj: Any) -> str:
    return str(getattr(obj, "__module__", "") or "").split(".")[0]


def _parsed(obj: Any) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return None


class _Collector:
    """Accumulates ``path -> keys`` over every function and class it is shown."""

    def __init__(self) -> None:
        self.reads: dict[Path, set[str]] = {}
        self.metric_data: set[str] = set()
        self._seen: set[tuple[Any, tuple]] = set()
        self._depth = 0

    def record(self, path: Path, key: str) -> None:
        self.reads.setdefault(path, set()).add(key)

    # ---- one function body ---------------------------------------------------------------
    def function(self, func_node: ast.FunctionDef, env: dict[str, Path], scope: dict[str, Any]) -> dict[str, Path]:
        """Record the reads of one function body; returns its ``self.x`` bindings."""
        env = dict(env)
        for _ in range(2):  # assignments may chain (a = opt['x']; b = a['y'])
            for node in ast.walk(func_node):
                self._bind(node, env)
        for node in ast.walk(func_node):
            self._read(node, env, scope)
        return {name: path for name, path in env.items() if name.startswith("self.")}

    def _bind(self, node: ast.AST, env: dict[str, Path]) -> None:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name, path = _target_name(node.targets[0]), self.path_of(node.value, env)
            if name is not None and path is not None:
                env[name] = path
        elif isinstance(node, (ast.For, ast.comprehension)):
            loop = node.iter.args[0] if _call_name(node.iter) in PASS_THROUGH and node.iter.args else node.iter
            if isinstance(loop, ast.Call) and isinstance(loop.func, ast.Attribute):
                source = self.path_of(loop.func.value, env)
                target = node.target
                if source is not None and loop.func.attr == "items" and isinstance(target, ast.Tuple):
                    target = target.elts[-1]
                elif source is None or loop.func.attr != "values":
                    return
                name = _target_name(target)
                if name is not None:
                    env[name] = (*source, ANY)

    def _read(self, node: ast.AST, env: dict[str, Path], scope: dict[str, Any]) -> None:
        if isinstance(node, ast.Subscript):
            key = _constant(node.slice)
            parent = self.path_of(node.value, env)
            if key is not None and parent is not None:
                self.record(parent, key)
            if key is not None and isinstance(node.ctx, ast.Store) and _target_name(node.value, "") .endswith(
                    METRIC_DATA):
                self.metric_data.add(key)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in DICT_READS and node.args:
                key, parent = _constant(node.args[0]), self.path_of(node.func.value, env)
                if key is not None and parent is not None:
                    self.record(parent, key)
            self._follow(node, env, scope)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In):
            key, parent = _constant(node.left), self.path_of(node.comparators[0], env)
            if key is not None and parent is not None:
                self.record(parent, key)

    def path_of(self, node: ast.AST, env: dict[str, Path]) -> Path | None:
        """The option section an expression evaluates to, or None."""
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _target_name(node)
            return env.get(name) if name is not None else None
        if isinstance(node, ast.Subscript):
            key, parent = _constant(node.slice), self.path_of(node.value, env)
            return (*parent, key) if key is not None and parent is not None else None
        if isinstance(node, ast.BoolOp):
            return next((p for p in (self.path_of(v, env) for v in node.values) if p is not None), None)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in DICT_READS and node.args:
                key, parent = _constant(node.args[0]), self.path_of(func.value, env)
                return (*parent, key) if key is not None and parent is not None else None
            if isinstance(func, ast.Attribute) and func.attr == "copy" and not node.args:
                return self.path_of(func.value, env)
            if _call_name(node) in PASS_THROUGH and len(node.args) == 1:
                return self.path_of(node.args[0], env)
        return None

    # ---- following calls -----------------------------------------------------------------
    def _follow(self, call: ast.Call, env: dict[str, Path], scope: dict[str, Any]) -> None:
        target = _resolve(call.func, scope)
        if inspect.isfunction(target):  # compat's wrappers (parse_options): read the function they wrap
            target = inspect.unwrap(target)
        if target is None or _package(target) not in FOLLOWED_PACKAGES or self._depth >= MAX_CALL_DEPTH:
            return
        func = target.__init__ if inspect.isclass(target) else target
        if not inspect.isfunction(func):
            return
        params = list(inspect.signature(func).parameters.values())[1 if inspect.isclass(target) else 0:]
        bound: dict[str, Path] = {}
        for param, arg in zip(params, call.args, strict=False):
            path = self.path_of(arg, env)
            if path is not None and param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                bound[param.name] = path
        for keyword in call.keywords:
            path = self.path_of(keyword.value, env)
            if path is None:
                continue
            if keyword.arg is not None:
                bound[keyword.arg] = path
            else:  # f(**opt['dist_params']): the section's keys are f's parameters
                for param in params:
                    self.record(path, ANY if param.kind is param.VAR_KEYWORD else param.name)
        self._depth += 1
        try:
            if inspect.isclass(target):
                self.klass(target, bound)
            else:
                self.callable(target, bound)
        finally:
            self._depth -= 1

    def callable(self, func: Callable, bound: dict[str, Path]) -> None:
        """Record the reads of a module-level function called with ``bound`` parameters."""
        key = (func, tuple(sorted(bound.items())))
        if key in self._seen:
            return
        self._seen.add(key)
        tree = _parsed(func)
        node = tree.body[0] if tree is not None and tree.body else None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.function(node, {**_root_seed(func), **bound}, vars(inspect.getmodule(func) or object))

    def klass(self, cls: type, init_bound: dict[str, Path] | None = None) -> None:
        """Record the reads of every method of ``cls`` and its bases (``opt`` / ``self.opt``: the root)."""
        init_bound = {ROOT_NAME: ()} if init_bound is None else init_bound
        key = (cls, tuple(sorted(init_bound.items())))
        if key in self._seen:
            return
        self._seen.add(key)
        for base in cls.__mro__:
            if _package(base) in SKIPPED_PACKAGES or base is object:
                continue
            tree = _parsed(base)
            node = tree.body[0] if tree is not None and tree.body else None
            if not isinstance(node, ast.ClassDef):
                continue
            methods = [m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
            scope = vars(inspect.getmodule(base) or object)
            attributes: dict[str, Path] = {"self.opt": ()}
            for method in sorted(methods, key=lambda m: m.name != "__init__"):  # __init__ binds self.x first
                seed = init_bound if method.name == "__init__" else _root_seed(getattr(base, method.name, None))
                attributes.update(self.function(method, {**seed, **attributes}, scope))


def _root_seed(func: Any) -> dict[str, Path]:
    """``opt`` is the root, unless it is a parameter (then only what the caller passed counts)."""
    try:
        params = inspect.signature(func).parameters if callable(func) else {}
    except (TypeError, ValueError):
        params = {}
    return {} if ROOT_NAME in params else {ROOT_NAME: ()}


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _target_name(node: ast.AST, default: str | None = None) -> str | None:
    """``name`` or ``self.attr`` (dotted), else ``default``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _target_name(node.value)
        return f"{base}.{node.attr}" if base is not None else default
    return default


def _call_name(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _resolve(func: ast.AST, scope: dict[str, Any]) -> Any:
    """The object a call's ``f`` / ``module.f`` names in the module ``scope``, or None."""
    if isinstance(func, ast.Name):
        return scope.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner = scope.get(func.value.id)
        return getattr(owner, func.attr, None) if inspect.ismodule(owner) else None
    return None


def _frozen(collector: _Collector) -> Reads:
    return {path: frozenset(keys) for path, keys in collector.reads.items()}


@functools.cache
def class_reads(cls: type) -> Reads:
    """``path -> keys`` that ``cls`` (a model or dataset) and its bases read from their ``opt``."""
    collector = _Collector()
    collector.klass(cls)
    return _frozen(collector)


@functools.cache
def metric_data_keys(cls: type) -> frozenset[str]:
    """The metric arguments a model's validation fills itself (``metric_data['img'] = ...``)."""
    collector = _Collector()
    collector.klass(cls)
    return frozenset(collector.metric_data)


@functools.cache
def pipeline_reads() -> Reads:
    """``path -> keys`` read by BasicSR's training and test pipelines and everything they call."""
    import basicsr.test
    import basicsr.train

    collector = _Collector()
    for entry in (basicsr.train.train_pipeline, basicsr.test.test_pipeline):
        collector.callable(entry, {})
    return _frozen(collector)


def keys_at(reads: Reads, path: Path) -> frozenset[str]:
    """Keys read at ``path``, matching ``'*'`` in a read path to any key."""
    keys: set[str] = set()
    for read_path, read_keys in reads.items():
        if len(read_path) == len(path) and all(r in (p, ANY) for r, p in zip(read_path, path, strict=True)):
            keys |= read_keys
    return frozenset(keys)


def merge(*parts: Reads) -> Reads:
    merged: dict[Path, frozenset[str]] = {}
    for part in parts:
        for path, keys in part.items():
            merged[path] = merged.get(path, frozenset()) | keys
    return merged
