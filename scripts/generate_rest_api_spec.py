"""Generate sandbox/data/rest_api_spec.json: for every Elasticsearch API, its URL paths and methods, the query
parameters it accepts and whether it takes a body.

Source: the Elasticsearch REST API specification, github.com/elastic/elasticsearch-specification, from which
Elasticsearch's own rest-api-spec/api/*.json files are generated (compiler/src/transform/schema-to-rest-api-spec.ts).
It reads the TypeScript request definitions (specification/**/*Request.ts) of one git ref of a local clone:

    python scripts/generate_rest_api_spec.py /path/to/elasticsearch-specification 9.1 > sandbox/data/rest_api_spec.json
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

# specification/_types/Base.ts RequestBase extends CommonQueryParameters (_spec_utils/behaviors.ts)
COMMON = ["error_trace", "filter_path", "human", "pretty"]
# cat/_types/CatBase.ts CatRequestBase extends CommonCatQueryParameters (_spec_utils/behaviors.ts)
CAT_COMMON = ["bytes", "format", "help", "time", "v"]

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_ALIASES = re.compile(r"@aliases\s+([\w, ]+)")


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def block(text: str, key: str) -> str | None:
    """The text between the brackets opening after `key:` (at the request interface's top level)."""
    match = re.search(rf"\n  {key}\??:\s*([\[{{])", text)
    if not match:
        return None
    opening = match.group(1)
    closing = "]" if opening == "[" else "}"
    depth, start = 0, match.end() - 1
    for i in range(start, len(text)):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    raise ValueError(f"unbalanced {key}")


def members(body: str | None) -> list[str]:
    """Top-level member names of an object block, with their `@aliases`."""
    if body is None:
        return []
    names: list[str] = []
    depth = 0
    pending_aliases: list[str] = []
    for token in re.split(r"(/\*.*?\*/|//[^\n]*|\n)", body, flags=re.S):
        if token.startswith("/*"):
            found = _ALIASES.search(token)
            if found and depth == 0:
                pending_aliases = [a.strip() for a in found.group(1).split(",") if a.strip()]
            continue
        if token.startswith("//"):
            continue
        if depth == 0:
            match = re.match(r"\s*(\w+)\??\s*:", token)
            if match:
                names.append(match.group(1))
                names.extend(pending_aliases)
                pending_aliases = []
        depth += token.count("{") + token.count("<") - token.count("}") - token.count(">")
    return names


def parse(source: str) -> tuple[str, dict] | None:
    name = re.search(r"@rest_spec_name\s+(\S+)", source)
    head = re.search(r"export interface Request(?:<[^>]*>)? extends (\w+)[^{]*\{", source)
    if not name or not head:
        return None
    text = "\n" + source[head.end():]
    urls = []
    for url in re.finditer(r"path:\s*'([^']+)'\s*methods:\s*\[([^\]]*)\]", _COMMENT.sub("", block(text, "urls") or "")):
        urls.append([re.findall(r"'(\w+)'", url.group(2)), url.group(1)])
    params = members(block(text, "query_parameters"))
    if head.group(1) == "CatRequestBase":
        params += CAT_COMMON
    has_body = re.search(r"\n  body\??:", text) is not None
    return name.group(1), {"paths": urls, "params": sorted(set(params)), "body": has_body}


def main(repo: str, ref: str) -> None:
    commit = git(repo, "rev-parse", ref).strip()
    apis = {}
    for path in git(repo, "ls-tree", "-r", "--name-only", commit, "specification").split():
        if path.endswith("Request.ts"):
            parsed = parse(git(repo, "show", f"{commit}:{path}"))
            if parsed:
                apis[parsed[0]] = parsed[1]
    out = {"source": f"github.com/elastic/elasticsearch-specification {ref} ({commit})",
           "generator": "scripts/generate_rest_api_spec.py", "common": COMMON, "apis": dict(sorted(apis.items()))}
    # one API per line: compact, yet a regeneration diffs readably
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in out["apis"].items()]
    head = {k: v for k, v in out.items() if k != "apis"}
    text = json.dumps(head, indent=1)[:-2] + ',\n "apis": {\n' + ",\n".join(lines) + "\n }\n}\n"
    sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
