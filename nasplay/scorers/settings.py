"""A scorer's settings resolved from its defaults, the search's flags and ``scorer_options``.

The resolved values go back into the ``SearchConfig`` (the flags' fields at top level, every
other settings field in ``scorer_options``), so ``config.json`` holds everything needed to score
the same way again, and a resume on other hardware (GPU defaults differ) does.
"""

from __future__ import annotations

import dataclasses

from nasplay.errors import UserError, first_line
from nasplay.scorers.registry import FLAG_FIELDS, Scorer


def resolve(scorer: Scorer, config, label: str = "scorer_options") -> tuple:
    """``(config, options)``: the config with the scorer's settings filled in, and the settings
    as the JSON-able dict each trial's ``ctx.options`` receives."""
    if scorer.defaults is None:  # a function scorer: its options are its own to read
        given = {name: getattr(config, name) for name in (*scorer.passthrough, "seed")
                 if getattr(config, name) is not None}
        return config, {**given, **config.scorer_options}
    base = scorer.defaults(config.gpus_per_trial > 0)
    _refuse_unknown(scorer, base, config, label)
    values = {name: config.seed for name in scorer.seed_fields}
    values.update({target: getattr(config, flag) for flag, target in scorer.flags.items()
                   if getattr(config, flag) is not None})
    values.update(config.scorer_options)
    try:
        settings = dataclasses.replace(base, **values)
    except (TypeError, ValueError) as e:
        raise UserError(f"{scorer.name} scorer settings: {first_line(e)}") from None
    if hasattr(settings, "check"):
        settings.check()
    options = {name: value for name, value in _json(dataclasses.asdict(settings)).items()
               if name not in scorer.per_trial}
    top = {flag: options[target] for flag, target in scorer.flags.items()}
    rest = {name: value for name, value in options.items() if name not in scorer.flags.values()}
    config = dataclasses.replace(config, **top, scorer_options=rest)
    options.update({name: getattr(config, name) for name in scorer.passthrough})
    return config, options


def _refuse_unknown(scorer: Scorer, base, config, label: str) -> None:
    known = [f.name for f in dataclasses.fields(base) if f.name not in scorer.per_trial]
    unknown = sorted(set(config.scorer_options) - set(known))
    if unknown:
        raise UserError(f"{label}: unknown {type(base).__name__} setting(s) "
                        f"{', '.join(unknown)}; known: {', '.join(known)}")
    takes = [*scorer.flags, *scorer.passthrough]
    for flag in FLAG_FIELDS:
        if getattr(config, flag) is not None and flag not in takes:
            options = ", ".join(f"--{name.replace('_', '-')}" for name in takes) or "none"
            raise UserError(f"--{flag.replace('_', '-')} does not apply to the {scorer.name} "
                            f"scorer (it takes {options})")


def _json(values: dict) -> dict:
    """Tuples as lists, as JSON gives them back."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
