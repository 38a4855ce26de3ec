"""The ``flyteconnect`` command line: a thin shell over library calls (needs the ``[cli]`` extra)."""
