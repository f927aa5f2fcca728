from loadtests.ports import free_port

__all__ = ["free_port"]
