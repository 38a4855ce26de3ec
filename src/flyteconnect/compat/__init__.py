"""What connectors written for flytekit use from flytekit's runtime, without flytekit.

``flyteconnect migrate`` rewrites a flytekit connector module's imports to these modules; a porter can also import
them by hand. Each keeps flytekit's names, signatures and error contract where connectors depend on them:

- ``flyteconnect.compat.runtime``: ``logger``, ``lazy_module``, ``current_context()`` (its ``secrets``),
  ``FlyteContextManager``/``FlyteContext``, ``FlyteException``/``FlyteUserException``, ``FLYTE_FAIL_ON_ERROR``,
  ``Resources``;
- ``flyteconnect.compat.types``: ``TypeEngine`` (conversions through ``flyteconnect.literals``),
  ``literal_map_string_repr``;
- ``flyteconnect.compat.models``: flytekit's model constructors that take positional arguments (``Identifier``,
  ``TaskLog``...), building the flyteidl protos;
- ``flyteconnect.compat.formatting``: ``format_dict`` (flytekit.utils.dict_formatter).
"""
