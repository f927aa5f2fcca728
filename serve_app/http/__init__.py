"""The FastAPI ring: routes, problem rendering, middleware. Imports no Ray."""
