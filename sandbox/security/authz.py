"""Authorisation of one request, as ES's AuthorizationService / RBACEngine / IndicesAndAliasesResolver do it.

- A cluster action needs a cluster privilege granting it (RBACEngine#authorizeClusterAction).
- An index action names indices: explicit names (an alias counts as itself: a privilege on the alias covers the
  indices behind it) must each be granted, else 403 "on indices [...]"; with ignore_unavailable an unauthorised name
  is skipped instead. Wildcards expand to the authorised matches only (IndicesAndAliasesResolver: no 403 for a
  wildcard; nothing authorised gives ES's "*,-*" empty expression).
- Composite requests (bulk, msearch, mget, reindex) first need *some* index privilege granting the composite action
  (RBACEngine: role.checkIndicesAction); their items are then authorised one by one: bulk items per item
  (AuthorizationService#authorizeBulkItems, 403 in the item), msearch per search (403 in that response).
- A refusal is a 403 security_exception worded as AuthorizationDenialMessages.Default#actionDenied.
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import EsError
from sandbox.indices.names import glob_match, is_wildcard, resolve_date_math
from sandbox.security import actions as a
from sandbox.security import privileges as p
from sandbox.security.roles import Subject

NO_INDEX = "*,-*"  # IndicesAndAliasesResolverField.NO_INDEX_PLACEHOLDER expression: matches nothing


def denial(subject: Subject, action: str, context: str | None = None) -> EsError:
    message = f"action [{action}] is unauthorized for {subject.describe()}"
    if context:
        message += f" {context}"
    if p.is_cluster_action(action):
        message += f", this action is granted by the cluster privileges [{','.join(p.granting('cluster', action))}]"
    elif p.is_index_action(action):
        message += f", this action is granted by the index privileges [{','.join(p.granting('index', action))}]"
    return EsError(message, status=403, type="security_exception")


def on_indices(names: list[str]) -> str:
    """IndexAuthorizationResult#getFailureDescription (restricted system indices are not modelled)."""
    return f"on indices [{','.join(names)}]"


def _flag(args: Any, name: str, default: bool) -> bool:
    value = args.get(name)
    return default if value is None else str(value).lower() in ("", "true")


def authorized_expression(sb: Any, subject: Subject, action: str, expression: str | None, args: Any) -> str:
    """The index expression reduced to what `subject` may use for `action`, or a 403 for explicit names."""
    ignore_unavailable = _flag(args, "ignore_unavailable", False)
    store = sb.cluster.indices
    parts = [part.strip() for part in (expression or "_all").split(",") if part.strip()] or ["_all"]
    kept: list[str] = []
    denied: list[str] = []
    for part in parts:
        if part.startswith("-") and kept:
            kept.append(part)  # an exclusion only narrows what is already there
            continue
        name = resolve_date_math(part)
        if is_wildcard(name) or name == "_all":
            pattern = "*" if name == "_all" else name
            matched = store.resolve(pattern, ignore_unavailable=True, allow_no_indices=True,
                                    expand_wildcards=args.get("expand_wildcards", "open"))
            allowed = [i.name for i in matched if subject.index_grants(action, i.name)
                       or any(glob_match(pattern, alias) and subject.index_grants(action, alias)
                              for alias in store.aliases_of(i.name))]
            kept.extend([part] if len(allowed) == len(matched) else allowed)
        elif subject.index_grants(action, name):
            kept.append(part)
        elif not ignore_unavailable:
            denied.append(name)
    if denied:
        raise denial(subject, action, on_indices(denied))
    return ",".join(kept) if kept else NO_INDEX


def check_name(subject: Subject | None, action: str, name: str) -> None:
    """One concrete name (bulk item, reindex destination): granted or a 403 naming it."""
    if subject is not None and not subject.index_grants(action, name):
        raise denial(subject, action, on_indices([name]))


def bulk_item(sb: Any, subject: Subject | None, op: str, name: str) -> None:
    """AuthorizationService#authorizeBulkItems for one item: its implied action on its index (date math resolved,
    aliases not), after TransportBulkAction's auto-create of a missing index (indices:admin/auto_create)."""
    if subject is None:
        return
    name = resolve_date_math(name)
    store = sb.cluster.indices
    if op != "delete" and name not in store.indices and name not in store.aliases:
        check_name(subject, a.AUTO_CREATE, name)
    implied = {"index": a.INDEX_OP, "create": a.CREATE_OP, "update": a.UPDATE, "delete": a.DELETE}[op]
    check_name(subject, implied, name)


def search_target(sb: Any, subject: Subject | None, target: str | None, args: Any) -> str | None:
    """One search of an msearch: its index expression reduced to the authorised indices (403 for explicit ones)."""
    if subject is None:
        return target
    return authorized_expression(sb, subject, a.SEARCH, target, args)


def authorize(sb: Any, subject: Subject, action: a.Action, req: Any, params: dict[str, Any]) -> None:
    """Check one request before its handler runs; may narrow params["index"] to the authorised indices."""
    if action.targets == "self":
        return
    if action.targets == "cluster":
        if not subject.cluster_grants(action.name):
            raise denial(subject, action.name)
        return
    if action.targets == "path":
        if "index" not in params:
            # index-less form (all indices): ES narrows the output to the authorised indices; the sandbox only
            # requires the action to be granted on some index pattern
            if not subject.any_index_grants(action.name):
                raise denial(subject, action.name)
            return
        params["index"] = authorized_expression(sb, subject, action.name, params["index"], req.args)
        if action.implied:
            authorized_expression(sb, subject, action.implied, params["index"], req.args)
        return
    # composite requests
    if not subject.any_index_grants(action.name):
        raise denial(subject, action.name)
    if action.targets == "aliases":
        _aliases(sb, subject, action.name, req)
    elif action.targets == "reindex":
        _reindex(sb, subject, req)
    elif action.targets == "mget":
        _mget(sb, subject, req, params.get("index"))


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _aliases(sb: Any, subject: Subject, action: str, req: Any) -> None:
    """IndicesAliasesRequest: every index and alias of every add/remove action needs indices:admin/aliases;
    remove_index needs indices:admin/delete (TransportIndicesAliasesAction, AliasActions)."""
    denied: dict[str, list[str]] = {}
    for item in (req.json_object().get("actions") or []):
        if not isinstance(item, dict):
            continue
        for kind, spec in item.items():
            if not isinstance(spec, dict):
                continue
            needed = "indices:admin/delete" if kind == "remove_index" else action
            names = _names(spec.get("index")) + _names(spec.get("indices"))
            if kind != "remove_index":
                names += _names(spec.get("alias")) + _names(spec.get("aliases"))
            for name in names:
                if is_wildcard(name):
                    continue  # ES narrows wildcards to the authorised names
                if not subject.index_grants(needed, resolve_date_math(name)):
                    denied.setdefault(needed, []).append(name)
    for needed, names in denied.items():
        raise denial(subject, needed, on_indices(names))


def _reindex(sb: Any, subject: Subject, req: Any) -> None:
    """ReindexRequest runs a search on the source and bulk writes to the destination as the caller."""
    body = req.json_object()
    source, dest = body.get("source") or {}, body.get("dest") or {}
    if isinstance(source, dict) and source.get("index") is not None:
        authorized_expression(sb, subject, a.SEARCH, ",".join(_names(source.get("index"))), {})
    if isinstance(dest, dict) and isinstance(dest.get("index"), str):
        bulk_item(sb, subject, "create" if dest.get("op_type") == "create" else "index", dest["index"])


def _mget(sb: Any, subject: Subject, req: Any, path_index: str | None) -> None:
    """Multi-get: each document's index needs indices:data/read/get (checked for the whole request here)."""
    body = req.json_object()
    names = {str(doc.get("_index") or path_index) for doc in (body.get("docs") or []) if isinstance(doc, dict)}
    if path_index and body.get("ids") is not None:
        names.add(path_index)
    denied = sorted(n for n in names if n != "None" and not subject.index_grants("indices:data/read/get", n))
    if denied:
        raise denial(subject, "indices:data/read/get", on_indices(denied))
