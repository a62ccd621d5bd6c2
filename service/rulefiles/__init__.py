"""Reading scheme folders of YAML rule files into the scoring core's model."""

from .errors import RuleFileError, RuleSetError  # noqa: F401
