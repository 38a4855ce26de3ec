"""``flyteconnect migrate``: a libcst codemod porting flytekit connector modules to flyteconnect (extra ``migrate``).

``rules`` is the name table, ``codemod`` rewrites one module's source, ``project`` follows a module's local imports
and writes the output tree.
"""
