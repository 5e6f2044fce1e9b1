"""The ``bizra serve`` HTTP service: configuration (config), the command (server), the FastAPI
app and its error contract (app, api_models), the live node (node_state), middlewares
(http_guards), metrics, micro-batching, the job runner and its command-line client.

FastAPI, Starlette and uvicorn are imported only in this package (an import-linter contract),
and only by app, api_models and http_guards at module level, so config, node_state and the
other commands load without the ``serve`` extra."""
