"""The connector server: a protocol-neutral dispatcher, Flyte wire adapters, and the grpc.aio application.

Import what you need from the submodules (``flyteconnect.server.app.ConnectorServer``,
``flyteconnect.server.dispatch.Dispatcher``); this package imports nothing so ``import flyteconnect`` stays light.
"""
