"""A/B variants: which model a user gets, and each variant's model configuration.

A variant is a name, a share of the users and changes to the model's configuration
(``OnlineConfig`` fields, e.g. ``mmr_lambda`` or ``ranker_rate``). A user's variant follows
from a hash of the user id and a salt alone (SHA-256, read as a number in [0, 1), against the
shares' running sum): the same user gets the same variant in every subtask, after every
restart and rescale, and in the offline replay; a new salt reshuffles everyone. Each variant is
its own model: its own snapshots (under ``model_name(base, variant)`` in Cassandra), its own
lineage in the update log, its own metrics.

The spec, one flag (``--variants``) or a file (``@path``, the same text or a JSON object)::

    control=0.5,treatment=0.5:{"mmr_lambda": 0.7}

>>> variants = parse_variants('control=0.5,treatment=0.5:{"mmr_lambda": 0.7}')
>>> [(v.name, v.share, v.overrides) for v in variants]
[('control', 0.5, {}), ('treatment', 0.5, {'mmr_lambda': 0.7})]
>>> variants[1].config(OnlineConfig()).mmr_lambda
0.7
>>> assign("u1", variants).name == assign("u1", variants).name
True
>>> parse_variants("")[0].name, model_name("default", parse_variants("")[0])
('default', 'default')
>>> model_name("default", variants[1])
'default.treatment'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from operators.model.online import OnlineConfig

DEFAULT = "default"      # the one variant of a job without --variants
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(OnlineConfig)}


@dataclass(frozen=True)
class Variant:
    name: str
    share: float
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self, base: OnlineConfig) -> OnlineConfig:
        """``base`` with this variant's changes."""
        return dataclasses.replace(base, **self.overrides)


def parse_variants(spec: str) -> list[Variant]:
    """The variants of ``spec`` (module doc); one variant, ``default``, with everything, when
    it is empty. A bad spec raises ValueError saying what is wrong.

    >>> parse_variants("a=0.5,b=0.4")
    Traceback (most recent call last):
    ...
    ValueError: --variants: the shares add up to 0.9, not 1
    >>> parse_variants('a=1:{"mmr_lambdaa": 0.7}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --variants: variant 'a' changes 'mmr_lambdaa', which is not a model setting ...
    """
    spec = spec.strip()
    if spec.startswith("@"):
        spec = Path(spec[1:]).read_text().strip()
    if not spec:
        return [Variant(DEFAULT, 1.0)]
    if spec.startswith("{"):
        entries = [(name, body) for name, body in _json_object(spec, "the variants file").items()]
        variants = [_from_json(name, body) for name, body in entries]
    else:
        variants = [_from_text(part) for part in _split(spec)]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"--variants: a name appears twice: {names}")
    total = sum(v.share for v in variants)
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise ValueError(f"--variants: the shares add up to {total:g}, not 1")
    return variants


def assign(user_id: str, variants: Sequence[Variant], salt: str = "") -> Variant:
    """The variant of ``user_id``: stable, and each variant's share of users in expectation.

    >>> vs = parse_variants("a=0.25,b=0.75")
    >>> counts = {"a": 0, "b": 0}
    >>> for n in range(10_000):
    ...     counts[assign(f"user{n}", vs).name] += 1
    >>> 2_300 < counts["a"] < 2_700
    True
    """
    if len(variants) == 1:
        return variants[0]
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode("utf-8", "surrogatepass")).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    running = 0.0
    for variant in variants:
        running += variant.share
        if point < running:
            return variant
    return variants[-1]      # the shares' sum rounded just below 1


def model_name(base: str, variant: Variant) -> str:
    """The model's name in the snapshot store: the job's own for the single default variant
    (as before variants existed), ``base.variant`` for each named one."""
    return base if variant.name == DEFAULT else f"{base}.{variant.name}"


def _split(spec: str) -> list[str]:
    """Split on the commas between variants, not those inside a variant's JSON."""
    parts, depth, start = [], 0, 0
    for n, ch in enumerate(spec):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(spec[start:n])
            start = n + 1
    parts.append(spec[start:])
    return [p.strip() for p in parts if p.strip()]


def _from_text(part: str) -> Variant:
    head, _, body = part.partition(":")
    name, eq, share = head.partition("=")
    if not eq:
        raise ValueError(f"--variants: {part!r} is not NAME=SHARE[:{{json}}]")
    overrides = _json_object(body, f"variant {name.strip()!r}") if body.strip() else {}
    return _variant(name.strip(), share.strip(), overrides)


def _from_json(name: str, body: Any) -> Variant:
    if not isinstance(body, dict) or "share" not in body:
        raise ValueError(f"--variants: variant {name!r} needs an object with a share, got {body!r}")
    overrides = {k: v for k, v in body.items() if k != "share"}
    return _variant(name, body["share"], overrides)


def _variant(name: str, share: Any, overrides: dict[str, Any]) -> Variant:
    if not _NAME.fullmatch(name):
        raise ValueError(f"--variants: {name!r} is not a variant name "
                         "(a letter, then up to 31 letters, digits, _ or -)")
    try:
        value = float(share)
    except (TypeError, ValueError):
        raise ValueError(f"--variants: variant {name!r} has share {share!r}, not a number") from None
    if not 0 < value <= 1:
        raise ValueError(f"--variants: variant {name!r} has share {value:g}, outside (0, 1]")
    return Variant(name, value, {key: _setting(name, key, v) for key, v in overrides.items()})


def _setting(variant: str, key: str, value: Any) -> Any:
    spec = _CONFIG_FIELDS.get(key)
    if spec is None:
        raise ValueError(f"--variants: variant {variant!r} changes {key!r}, which is not a model setting "
                         "(operators/model/online.py OnlineConfig)")
    default = getattr(OnlineConfig(), key)
    if isinstance(default, bool) or not isinstance(default, int | float | tuple):
        raise ValueError(f"--variants: variant {variant!r} cannot change {key!r}")
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"--variants: variant {variant!r}: {key} takes a list of names, got {value!r}")
        return tuple(value)
    whole = isinstance(default, int)
    if isinstance(value, bool) or not isinstance(value, int | float) or (whole and value != int(value)):
        raise ValueError(f"--variants: variant {variant!r}: {key} takes {type(default).__name__}, got {value!r}")
    return type(default)(value)


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--variants: {what} is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--variants: {what} must be a JSON object, got {value!r}")
    return value
