"""The daemon's wiring: start-up order, scheduler jobs, sd_notify, signals, graceful stop.

``serve(config, args)`` runs it in the foreground (what ``keepers run`` and the
systemd unit call); :class:`Service` holds the parts and wires each one in
explicitly.
"""

from .app import Service, StartupError, serve

__all__ = ["Service", "StartupError", "serve"]
