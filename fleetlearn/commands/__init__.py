"""The `fleetlearn` subcommands, one module each: options in, the domain's config dataclass
built, its service served. Option defaults are read from those dataclasses
(:func:`~fleetlearn.commands.common.default`), so each default lives in one place."""
