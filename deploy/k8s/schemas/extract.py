"""Refresh the stored schemas in this folder (README.md here says where each came from).

    python deploy/k8s/schemas/extract.py crd CRD.yaml [CRD.yaml ...]
    python deploy/k8s/schemas/extract.py core DEFINITIONS_DIR VERSION Kind [Kind ...]

``crd``: each CustomResourceDefinition's served storage version's ``openAPIV3Schema``, as
published (x-kubernetes-* keys kept: tests/unit/test_k8s_manifests.py turns them into JSON
Schema), less its ``description`` texts and its ``status`` (never in a manifest), written as
``<kind>-<group>-<version>.json``.

``core``: a core Kubernetes kind's JSON schema from a kubernetes-json-schema folder
(``<kind>-<version>.json`` beside ``_definitions.json``, e.g. the PyPI package
kubernetes-validate's ``kubernetes-json-schema/v1.35.0-local``), made standalone: the
definitions it refers to go into its ``$defs``; descriptions dropped. Written as
``<kind>-v1.json`` with the Kubernetes version in ``x-kubernetes-version``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def strip(node: Any) -> Any:
    """``node`` without ``description`` texts (a property *named* description is kept)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: strip(sub) for name, sub in value.items()}
            else:
                out[key] = strip(value)
        return out
    if isinstance(node, list):
        return [strip(item) for item in node]
    return node


def write(name: str, schema: dict[str, Any]) -> None:
    text = json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n"
    (HERE / name).write_text(text, encoding="utf-8")
    print(f"{name}: {len(text.encode()):,} bytes")


def crd(paths: list[str]) -> None:
    for path in paths:
        for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            version = next(v for v in spec["versions"] if v.get("storage"))
            schema = strip(version["schema"]["openAPIV3Schema"])
            schema.get("properties", {}).pop("status", None)
            schema["x-source-crd"] = {"name": doc["metadata"]["name"], "version": version["name"]}
            write(f"{spec['names']['kind'].lower()}-{spec['group']}-{version['name']}.json", schema)


def relink(node: Any, defs: dict[str, Any], wanted: dict[str, Any]) -> Any:
    """``node`` with each ``$ref`` into ``defs`` pointing at ``#/$defs/NAME``; every definition
    it needs (transitively) collected into ``wanted``."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and "#/$defs/" in value:
                name = value.split("#/$defs/", 1)[1]
                if name not in wanted:
                    wanted[name] = None           # taken: a definition may refer to itself
                    wanted[name] = relink(defs[name], defs, wanted)
                out[key] = f"#/$defs/{name}"
            else:
                out[key] = relink(value, defs, wanted)
        return out
    if isinstance(node, list):
        return [relink(item, defs, wanted) for item in node]
    return node


def core(folder: str, k8s_version: str, kinds: list[str]) -> None:
    base = Path(folder)
    defs = json.loads((base / "_definitions.json").read_text(encoding="utf-8"))["$defs"]
    for kind in kinds:
        root = json.loads((base / f"{kind.lower()}-v1.json").read_text(encoding="utf-8"))
        wanted: dict[str, Any] = {}
        schema = strip(relink(root, defs, wanted))
        schema.pop("$id", None)       # the package's own locations; the test picks the draft
        schema.pop("$schema", None)
        schema["$defs"] = strip(dict(sorted(wanted.items())))
        schema["x-kubernetes-version"] = k8s_version
        write(f"{kind.lower()}-v1.json", schema)


if __name__ == "__main__":
    if sys.argv[1:2] == ["crd"]:
        crd(sys.argv[2:])
    elif sys.argv[1:2] == ["core"] and len(sys.argv) >= 5:
        core(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)
