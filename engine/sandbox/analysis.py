"""What a piece of code reads, binds and can produce -- worked out once, at compile time.

``free_names`` tells the forms package which fields a computed field depends on (and in which
order to compute them); ``yields_data`` spares the run-time look at a result when the expression
can only produce data (a comparison, arithmetic, a method call), which matters on the hot path.
"""
from __future__ import annotations

import ast

class _Scope:
    __slots__ = ("locals", "is_module")

    def __init__(self, local_names, is_module=False):
        self.locals = local_names
        self.is_module = is_module


def _bound_in(body_nodes) -> set[str]:
    """Names bound in a function body (not inside nested functions/comprehensions), minus `global`s."""
    bound, declared_global = set(), set()
    stack = list(body_nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global):
            declared_global.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            stack.extend(node.decorator_list)
            if not isinstance(node, ast.ClassDef):
                stack.extend(node.args.defaults)
                stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            # walrus targets inside comprehensions bind in this scope
            for sub in ast.walk(node):
                if isinstance(sub, ast.NamedExpr):
                    bound.add(sub.target.id)
            if isinstance(node, ast.Lambda):
                stack.extend(node.args.defaults)
            else:
                stack.append(node.generators[0].iter)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return bound - declared_global


def free_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(free names read, names bound at module level), flow-insensitively but scope-aware.

    A module-level name counts as read from outside if some read of it comes before its first
    binding in the source (``total = total + 1`` reads ``total``); names read inside functions count
    if the module never binds them.
    """
    module_body = tree.body if isinstance(tree, ast.Module) else [tree.body]
    module_bound = _bound_in(module_body)
    for node in ast.walk(tree):             # `global x` in a function binds x at module level
        if isinstance(node, ast.Global):
            module_bound.update(node.names)
    first_store: dict[str, tuple] = {}
    first_load: dict[str, tuple] = {}
    nested_loads: set[str] = set()

    def store_after(target, node, scopes):
        """Bind the names in ``target`` at the end of ``node`` (the value is computed first)."""
        end = (node.end_lineno, node.end_col_offset)
        for n in ast.walk(target):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                if len(scopes) == 1:
                    first_store.setdefault(n.id, end)
            elif n is not target and not isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Starred)):
                visit(n, scopes)

    def visit(node, scopes, pos=None):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                visit(ast.copy_location(ast.Name(node.target.id, ast.Load()), node.target), scopes)
            if node.value is not None:
                visit(node.value, scopes)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                store_after(target, node, scopes)
            return
        if isinstance(node, ast.Name):
            pos = (node.lineno, node.col_offset)
            if isinstance(node.ctx, ast.Load):
                for scope in reversed(scopes):
                    if scope.is_module:
                        if len(scopes) == 1:
                            first_load.setdefault(node.id, pos)
                        else:
                            nested_loads.add(node.id)
                        break
                    if node.id in scope.locals:
                        break
            elif len(scopes) == 1:
                first_store.setdefault(node.id, pos)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
            params |= {a.arg for a in (args.vararg, args.kwarg) if a}
            for d in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
                visit(d, scopes)
            if not isinstance(node, ast.Lambda):
                for d in node.decorator_list:
                    visit(d, scopes)
                if len(scopes) == 1:
                    first_store.setdefault(node.name, (node.lineno, node.col_offset))
            body = node.body if isinstance(node.body, list) else [node.body]
            inner = scopes + [_Scope(params | _bound_in(body))]
            for stmt in body:
                visit(stmt, inner)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            targets = set()
            for gen in node.generators:
                targets |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
            visit(node.generators[0].iter, scopes)
            inner = scopes + [_Scope(targets)]
            for i, gen in enumerate(node.generators):
                if i:
                    visit(gen.iter, inner)
                for cond in gen.ifs:
                    visit(cond, inner)
            for part in ((node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,)):
                visit(part, inner)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, scopes)

    top = [_Scope(set(), is_module=True)]
    for stmt in module_body:
        visit(stmt, top)
    free = {n for n, pos in first_load.items() if n not in first_store or pos < first_store[n]}
    free |= {n for n in nested_loads if n not in module_bound}
    return free, module_bound


# -- can this expression only produce data? ------------------------------------------------------------

#: library functions whose result is always data (whatever they are given)
_DATA_FUNCTIONS = frozenset({"bool", "int", "float", "str", "len", "round", "abs", "isinstance", "repr", "money",
                             "to_decimal", "is_blank", "days_between", "months_between", "age", "format_number",
                             "format_date", "mask", "truncate", "pad_left", "pad_right", "Decimal", "date",
                             "datetime", "timedelta", "today", "now", "add_days", "add_months", "add_years",
                             "add_working_days", "working_days_between", "is_working_day", "hasattr", "callable",
                             "sum", "any", "all", "ord", "chr", "divmod", "hex", "oct", "bin"})


def yields_data(node) -> bool:
    """True if ``node`` can only evaluate to data -- never to a function, generator or other object
    that should not leave the sandbox -- so its result needs no look at run time.

    A bare name is not enough (``x or len`` returns a library function); arithmetic is (a function
    does not support it); a method call on a value is (no data type has methods returning callables).
    """
    if isinstance(node, (ast.Constant, ast.Compare, ast.JoinedStr)):
        return True
    if isinstance(node, ast.UnaryOp):
        return True
    if isinstance(node, ast.BinOp):
        return all(isinstance(x, ast.Name) or yields_data(x) for x in (node.left, node.right))
    if isinstance(node, ast.BoolOp):
        return all(yields_data(v) for v in node.values)
    if isinstance(node, ast.IfExp):
        return yields_data(node.body) and yields_data(node.orelse)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(yields_data(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or yields_data(k) for k in node.keys) and all(
            yields_data(v) or isinstance(v, ast.Name) and k is None for k, v in zip(node.keys, node.values))
    if isinstance(node, ast.Subscript):
        return isinstance(node.value, ast.Name) or yields_data(node.value)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            return node.func.id in _DATA_FUNCTIONS
        if isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            return isinstance(receiver, ast.Name) or yields_data(receiver)
    return False
