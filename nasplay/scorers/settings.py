"""A scorer's settings resolved from its defaults, the search's seed and data,
``scorer_options`` (settings by field name: ``train_size``) and ``scorer_flags`` (by the flag
names the scorer declares: ``--subset 5000`` is ``{"subset": 5000}``; a flag wins).

The resolved values go back into the ``SearchConfig``'s ``scorer_options``, every settings field
by its own name (``train_size``), so ``config.json`` holds everything needed to score the same
way again, and a resume on other hardware (GPU defaults differ) does.
"""

from __future__ import annotations

import dataclasses

from nasplay.errors import UserError, check_int, first_line
from nasplay.scorers.registry import Scorer


def resolve(scorer: Scorer, config, label: str = "scorer_options") -> tuple:
    """``(config, options)``: the config with the scorer's settings filled in, and the settings
    as the JSON-able dict each trial's ``ctx.options`` receives. ``label`` names the field the
    settings come from in error messages."""
    given = dict(config.scorer_options)
    if scorer.defaults is None:  # a function scorer: its options are its own to read
        given.update(config.scorer_flags)
        config = dataclasses.replace(config, scorer_options=given, scorer_flags={})
        data = {} if config.data is None else {"data": config.data}
        return config, {**data, "seed": config.seed, **given}
    _refuse_data(scorer, config)
    gpu = config.gpus_per_trial > 0
    base = scorer.defaults(gpu)
    if not gpu and config.space in scorer.space_defaults:
        base = dataclasses.replace(base, **scorer.space_defaults[config.space])
    names = [f.name for f in dataclasses.fields(base) if f.name not in scorer.per_trial]
    values = {name: config.seed for name in scorer.seed_fields}
    if scorer.reads_data and config.data is not None and "data" in names:
        values["data"] = config.data
    flagged = _flagged(scorer, config.scorer_flags)
    # an option that is no settings field (--supernet) is saved beside them, and read back so
    _refuse_unknown(base, names + [o.target for o in scorer.options if o.target not in names],
                    set(given), label)
    values.update(given)
    values.update({option.target: value for option, value in flagged.values() if value is not None})
    extra = {name: values.pop(name) for name in list(values) if name not in names}
    try:
        settings = dataclasses.replace(base, **values)
    except (TypeError, ValueError) as e:
        raise UserError(f"{scorer.name} scorer settings: {first_line(e)}") from None
    if hasattr(settings, "check"):
        settings.check()
    options = {name: value for name, value in _json(dataclasses.asdict(settings)).items()
               if name not in scorer.per_trial}
    options.update(extra)
    data = options.pop("data", config.data)
    config = dataclasses.replace(config, data=data, scorer_options=dict(options), scorer_flags={})
    if scorer.reads_data:
        options["data"] = data
    options.update({name: getattr(config, name) for name in scorer.passthrough})
    return config, options


def _flagged(scorer: Scorer, flags: dict) -> dict:
    """``scorer_flags`` checked: flag -> (option, value). A flag of another scorer is refused by
    name, with the flags this one takes."""
    own = {option.flag: option for option in scorer.options}
    flagged = {}
    for key, value in flags.items():
        option = own.get(key)
        if option is None:
            raise UserError(f"--{str(key).replace('_', '-')} does not apply to the "
                            f"{scorer.name} scorer (it takes {_takes(scorer)})")
        if option.minimum is not None and value is not None:
            check_int(option.flag, value, minimum=option.minimum)
        if option.normalize is not None and value is not None:
            value = option.normalize(value)
        flagged[key] = (option, value)
    return flagged


def _takes(scorer: Scorer) -> str:
    flags = [option.cli for option in scorer.options]
    return ", ".join((["--data"] if scorer.reads_data else []) + flags) or "none"


def _refuse_data(scorer: Scorer, config) -> None:
    if config.data is not None and not scorer.reads_data:
        raise UserError(f"--data does not apply to the {scorer.name} scorer (it takes "
                        f"{_takes(scorer)})")


def _refuse_unknown(base, names: list[str], keys: set, label: str) -> None:
    unknown = sorted(keys - set(names))
    if unknown:
        raise UserError(f"{label}: unknown {type(base).__name__} setting(s) "
                        f"{', '.join(unknown)}; known: {', '.join(names)}")


def _json(values: dict) -> dict:
    """Tuples as lists, as JSON gives them back."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
