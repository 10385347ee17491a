"""Strategy playbook: YAML rules that map persona traits to recommended actions.

The package default (``analysis/data/playbook.yaml``) documents the rule language; a run can
point ``params.20_personas.playbook`` at its own copy. For each action the first matching rule
wins, and every persona shows the rule behind each of its actions.

Rules are checked against recency and frequency: a rule marked ``active_only: true`` (onboarding,
welcome series) never fires for a *lapsed* persona, one where at least ``thresholds.lapsed`` of the
customers are overdue (the time since their last order is more than twice their usual time
between orders: :func:`analysis.segment.behavioral.overdue`), whatever its other conditions.
Personas of a split the data do not support (verdict ``none``) get no actions.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import io
from ..config import PROJECT_ROOT, ConfigError
from ..text import literal
from .vocabulary import word_match

DEFAULT_ACTIONS = ("channel", "offer", "tone", "frequency", "budget_priority")
RESERVED = {"any", "not", "high", "low", "over"}
BASE_FACTS = {
    "segmentation", "basis", "segment", "customers", "customers_share", "revenue_share", "profit_share",
    "clv_share", "value_share", "value_index", "suppressed", "overdue_share", "lapsed", "verdict",
}
DEFAULT_THRESHOLDS = {"high": 0.5, "over": 0.3, "modal": 0.5, "lapsed": 0.5}
_SHARE = re.compile(r"^share\((?P<attr>[^=()]+)=(?P<level>.*)\)$")
_COMPARE = re.compile(r"^\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<num>-?[0-9.]+(?:e-?[0-9]+)?)\s*$")
_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}


@dataclass
class Rule:
    """One playbook rule: a name, a condition (``when``), actions (``do``) and a reason (``why``).

    ``active_only`` rules (onboarding, welcome) never fire for lapsed personas.
    """

    name: str
    when: dict[str, Any]
    do: dict[str, str]
    why: str = ""
    active_only: bool = False


@dataclass
class Playbook:
    """A validated playbook.

    Attributes
    ----------
    rules : list of Rule
    actions : tuple of str
        Action fields, in display order.
    thresholds : dict
        ``high`` (Cohen's d) and ``over`` (Cohen's h) for trait conditions; ``modal``: the share
        the most common level must reach to count as a persona's fact; ``lapsed``: the share of
        overdue customers that makes a persona lapsed.
    budget_weights : dict
        Budget priority -> weight for the resource-allocation summary.
    source : str
        Where the playbook was read from.
    """

    rules: list[Rule]
    actions: tuple[str, ...] = DEFAULT_ACTIONS
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    budget_weights: dict[str, float] = field(default_factory=lambda: {"high": 3.0, "medium": 2.0, "low": 1.0, "minimal": 0.5})
    source: str = "package default"


def parse_playbook(spec: dict[str, Any], source: str = "playbook") -> Playbook:
    """Validate a parsed playbook mapping.

    Raises
    ------
    ConfigError
        Naming the file, the rule and the key to fix.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list):
        raise ConfigError(f"{source}: expected a mapping with a 'rules' list (see the package default analysis/data/playbook.yaml).")
    actions = tuple(spec.get("actions") or DEFAULT_ACTIONS)
    rules = []
    for i, raw in enumerate(spec["rules"], start=1):
        where = f"{source}: rules[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping with name, when, do; found {type(raw).__name__}.")
        unknown = set(raw) - {"name", "when", "do", "why", "active_only"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; a rule has name, when, do, why and active_only.")
        if not isinstance(raw.get("active_only", False), bool):
            raise ConfigError(f"{where}: active_only must be true or false, found {raw['active_only']!r}.")
        name = str(raw.get("name") or f"rule {i}")
        when = raw.get("when") or {}
        do = raw.get("do") or {}
        if not isinstance(when, dict):
            raise ConfigError(f"{where} ('{name}'): 'when' must be a mapping of conditions, found {type(when).__name__}.")
        if not isinstance(do, dict) or not do:
            raise ConfigError(f"{where} ('{name}'): 'do' must map actions to recommendations, e.g. {{channel: e-mail}}.")
        bad = [k for k in do if k not in actions]
        if bad:
            raise ConfigError(f"{where} ('{name}'): unknown action(s) {bad}. Actions are {list(actions)}; add new ones to 'actions:' first.")
        _check_condition(when, f"{where} ('{name}')")
        rules.append(Rule(name=name, when=when, do={k: str(v) for k, v in do.items()}, why=str(raw.get("why") or ""),
                          active_only=bool(raw.get("active_only", False))))
    thresholds = {**DEFAULT_THRESHOLDS, **(spec.get("thresholds") or {})}
    weights = {"high": 3.0, "medium": 2.0, "low": 1.0, "minimal": 0.5, **(spec.get("budget_weights") or {})}
    return Playbook(rules=rules, actions=actions, thresholds={k: float(v) for k, v in thresholds.items()},
                    budget_weights={k: float(v) for k, v in weights.items()}, source=source)


def _check_condition(cond: dict[str, Any], where: str) -> None:
    for key, value in cond.items():
        if key in ("any",):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"{where}: 'any' needs a list of condition mappings, e.g. any: [{{rfm_segment: Champions}}, {{high: frequency}}].")
            for sub in value:
                _check_condition(sub, where)
        elif key == "not":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: 'not' needs a condition mapping, e.g. not: {{churn_risk: high}}.")
            _check_condition(value, where)
        elif key == "over":
            for item in value if isinstance(value, list) else [value]:
                if "=" not in str(item):
                    raise ConfigError(f"{where}: over: '{item}' should read '<attribute>=<level>', e.g. over: favourite_channel=app.")
        elif key.startswith("share"):
            if not _SHARE.match(key):
                raise ConfigError(f"{where}: '{key}' should read 'share(<attribute>=<level>)', e.g. \"share(churn_risk=high)\": \">= 0.4\".")
            if not _COMPARE.match(str(value)):
                raise ConfigError(f"{where}: {key}: '{value}' should be a comparison such as '>= 0.4'.")
        elif key not in RESERVED and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise ConfigError(f"{where}: condition key '{key}' is not a fact name, share(...), high, low, over, any or not.")


def load_playbook(path: str | Path | None = None) -> Playbook:
    """The package playbook, or a user's YAML file given by ``path`` (empty = default).

    Its ``source`` names the file as a page may show it: relative to the project when inside it,
    else by file name (never where a machine keeps its files).
    """
    spec = io.read_yaml(path or None, "playbook.yaml")
    return parse_playbook(spec, source=_display_path(Path(path)) if path else "analysis/data/playbook.yaml (package default)")


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return path.name


def persona_facts(profiles: pd.DataFrame, records: list[dict[str, Any]], modal_share: float = 0.5,
                  lapsed_share: float = 0.5) -> dict[str, dict[str, Any]]:
    """Facts per persona id, for rule conditions (see the playbook's header).

    A category attribute's fact is its most common level among the persona's customers when at
    least ``modal_share`` of them hold it (otherwise the fact is absent: no level describes them).
    ``overdue_share`` and ``lapsed`` (``overdue_share >= lapsed_share``) are present when the run
    has purchase data. Trait conditions (``high``, ``low``, ``over``) see the significant traits
    and the attributes that define the segment (their effect sizes are descriptive, not tested).
    """
    facts: dict[str, dict[str, Any]] = {}
    for rec in records:
        f: dict[str, Any] = {
            "segmentation": rec["segmentation"], "basis": rec["basis"], "segment": rec["segment"],
            "customers": rec["customers"], "customers_share": rec["customers_share"], "suppressed": rec["suppressed"],
            "value_share": rec["value_share"], "value_index": rec["value_index"],
            rec["segmentation"]: rec["segment"],
        }
        if rec.get("verdict"):
            f["verdict"] = rec["verdict"]
        if rec.get("overdue_share") is not None:
            f["overdue_share"] = rec["overdue_share"]
            f["lapsed"] = rec["overdue_share"] >= lapsed_share
        for w in rec["worth_shares"]:
            f[f"{w['measure']}_share"] = w["value"]
        f["_shares"] = {(rec["segmentation"], rec["segment"]): 1.0}
        facts[rec["persona_id"]] = f
    cat = profiles[profiles["kind"] == "category"]
    for pid, rows in cat.groupby("persona_id", sort=False):
        if pid not in facts:
            continue
        f = facts[pid]
        for r in rows[rows["is_mode"] & (rows["segment_value"] >= modal_share)].itertuples():
            f.setdefault(r.attribute, r.level)
        f["_shares"].update({(a, lv): float(v) for a, lv, v in zip(rows["attribute"], rows["level"], rows["segment_value"])})
    shown = profiles["significant"].fillna(False).astype(bool) | profiles["defines"].fillna(False).astype(bool)
    traits = profiles[profiles["kind"].isin(["numeric", "category"]) & shown]
    for pid, rows in traits.groupby("persona_id", sort=False):
        if pid in facts:
            facts[pid]["_effects"] = list(zip(rows["kind"], rows["attribute"], rows["level"], rows["effect_size"]))
    return facts


def _compare(actual: Any, expected: Any) -> bool:
    if actual is None or (isinstance(actual, float) and pd.isna(actual)):
        return False
    if isinstance(expected, list):
        return any(_compare(actual, e) for e in expected)
    if isinstance(expected, str):
        m = _COMPARE.match(expected)
        if m and isinstance(actual, (int, float)) and not isinstance(actual, bool):
            return _OPS[m["op"]](float(actual), float(m["num"]))
        return str(actual) == expected
    if isinstance(expected, bool) or isinstance(actual, bool):
        return bool(actual) == bool(expected)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return float(actual) == float(expected)
    return str(actual) == str(expected)


def _trait(facts: dict[str, Any], pattern: str, direction: str, thresholds: dict[str, float]) -> bool:
    """Whether a trait condition (``high`` / ``low`` / ``over``) holds: attribute names are matched on
    whole words (:func:`~analysis.personas.vocabulary.word_match`), so ``factor_*eco*`` never fires
    on an ``economy`` factor."""
    for kind, attr, level, effect in facts.get("_effects", []):
        if direction in ("high", "low"):
            if kind != "numeric" or not word_match(attr, pattern):
                continue
            if (direction == "high" and effect >= thresholds["high"]) or (direction == "low" and effect <= -thresholds["high"]):
                return True
        else:
            want_attr, _, want_level = pattern.partition("=")
            if kind == "category" and word_match(attr, want_attr.strip()) and level == want_level.strip() and effect >= thresholds["over"]:
                return True
    return False


def condition_holds(cond: dict[str, Any], facts: dict[str, Any], thresholds: dict[str, float]) -> bool:
    """Whether a rule condition holds for one persona's facts."""
    for key, expected in cond.items():
        if key == "any":
            ok = any(condition_holds(sub, facts, thresholds) for sub in expected)
        elif key == "not":
            ok = not condition_holds(expected, facts, thresholds)
        elif key in ("high", "low", "over"):
            items = expected if isinstance(expected, list) else [expected]
            ok = all(_trait(facts, str(item), key, thresholds) for item in items)
        elif (m := _SHARE.match(key)) is not None:
            share = facts.get("_shares", {}).get((m["attr"].strip(), m["level"].strip()), 0.0)
            ok = _compare(share, str(expected))
        else:
            ok = key in facts and _compare(facts[key], expected)
        if not ok:
            return False
    return True


def match_playbook(playbook: Playbook, profiles: pd.DataFrame, records: list[dict[str, Any]]) -> pd.DataFrame:
    """Each persona's recommended actions and the rule that fired for each.

    Returns
    -------
    DataFrame
        One row per (persona, action): ``persona_id``, ``action``, ``recommendation``,
        ``rule``, ``why``; plus rows with ``action == "matched"`` listing every rule that matched
        (``recommendation`` empty), so overridden rules remain visible.
    """
    facts = persona_facts(profiles, records, playbook.thresholds.get("modal", 0.5), playbook.thresholds.get("lapsed", 0.5))
    rows = []
    for rec in records:
        if rec.get("unsupported"):
            continue  # no strategy on a split the data do not support
        f = facts[rec["persona_id"]]
        chosen: dict[str, Rule] = {}
        for rule in playbook.rules:
            if rule.active_only and f.get("lapsed", False):
                continue
            if not condition_holds(rule.when, f, playbook.thresholds):
                continue
            rows.append({"persona_id": rec["persona_id"], "action": "matched", "recommendation": "", "rule": rule.name, "why": rule.why})
            for action in rule.do:
                chosen.setdefault(action, rule)
        for action in playbook.actions:
            if action in chosen:
                rule = chosen[action]
                rows.append({"persona_id": rec["persona_id"], "action": action, "recommendation": rule.do[action], "rule": rule.name, "why": rule.why})
    return pd.DataFrame(rows, columns=["persona_id", "action", "recommendation", "rule", "why"])


def unknown_attributes(playbook: Playbook, known: set[str]) -> list[str]:
    """Fact names the playbook's conditions use that this run does not have (informational)."""
    found: set[str] = set()

    def walk(cond: dict[str, Any]) -> None:
        for key, value in cond.items():
            if key == "any":
                for sub in value:
                    walk(sub)
            elif key == "not":
                walk(value)
            elif key in ("high", "low"):
                for item in value if isinstance(value, list) else [value]:
                    if not any(word_match(k, str(item)) for k in known):
                        found.add(str(item))
            elif key == "over":
                for item in value if isinstance(value, list) else [value]:
                    attr = str(item).partition("=")[0].strip()
                    if attr not in known:
                        found.add(attr)
            elif (m := _SHARE.match(key)) is not None:
                if m["attr"].strip() not in known:
                    found.add(m["attr"].strip())
            elif key not in BASE_FACTS and key not in known:
                found.add(key)

    for rule in playbook.rules:
        walk(rule.when)
    return sorted(found)


def playbook_sentence(playbook: Playbook, known: set[str]) -> str:
    """Markdown for the page: where the playbook comes from and the conditions this run cannot meet.

    File and attribute names are literal text (a glob such as ``factor_*eco*`` is not emphasis).
    """
    missing = unknown_attributes(playbook, known)
    names = ", ".join(literal(name) for name in missing) if missing else "none"
    return (f"Playbook: {literal(playbook.source)}. Conditions on attributes this run does not have (never true "
            f"here): {names}.")


def _describe_condition(cond: dict[str, Any]) -> str:
    if not cond:
        return "always"
    parts = []
    for key, value in cond.items():
        if key == "any":
            parts.append("any of (" + " | ".join(_describe_condition(sub) for sub in value) + ")")
        elif key == "not":
            parts.append("not (" + _describe_condition(value) + ")")
        else:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(f"{key}: {shown}")
    return "; ".join(parts)


def playbook_table(playbook: Playbook) -> pd.DataFrame:
    """The rules as a table: order, name, condition in words, actions set, reason."""
    return pd.DataFrame([
        {"order": i, "rule": r.name,
         "when": _describe_condition(r.when) + ("; not for lapsed personas" if r.active_only else ""),
         "sets": "; ".join(f"{k}: {v}" for k, v in r.do.items()), "why": r.why}
        for i, r in enumerate(playbook.rules, start=1)
    ])
