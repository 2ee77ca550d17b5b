"""Real-time monitoring rules over event streams: windows, aggregates, scores, typologies, alerts.

Public surface:

* :class:`RuleService` (``loom.extensions["rules"].service``, or :func:`service`): ``ingest``,
  ``process``, ``apply_partition``, ``activate`` (maker-checker), ``versions``, ``list_alerts``,
  ``set_outcome``, ``precision``;
* :func:`backtest` -- replay stored history through a rule set (streaming or vectorised);
* :func:`export_report` -- large-value / suspicious transaction reports as CSV or XML;
* :func:`parse_rule`, :func:`check_definitions`, :func:`build` for tools and tests.
"""
from engine.rules.backtest import BacktestResult, backtest, load_history
from engine.rules.codegen import Instance, Program, TypologyInstance, build
from engine.rules.expressions import ExpressionError, check
from engine.rules.ingest import normalize, parse_body
from engine.rules.model import Rule, Ruleset, Typology, check_definitions, parse_rule, parse_ruleset, parse_typology
from engine.rules.reports import export_report
from engine.rules.service import RuleService, partition_of


def service(loom) -> RuleService:
    """The rule service attached to ``loom``."""
    return loom.extensions["rules"].service


__all__ = ["BacktestResult", "ExpressionError", "Instance", "Program", "Rule", "RuleService", "Ruleset", "Typology",
           "TypologyInstance", "backtest", "build", "check", "check_definitions", "export_report", "load_history",
           "normalize", "parse_body", "parse_rule", "parse_ruleset", "parse_typology", "partition_of", "service"]
