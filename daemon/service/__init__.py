"""The daemon's wiring: start-up order, scheduler jobs, sd_notify, signals, graceful stop.

``serve(config, args)`` runs it in the foreground (what ``keepers run`` and the
systemd unit call). Other parts plug in through ``daemon.service.app.PLUGINS``
and the :class:`Service` they are handed (``register_command``, ``scheduler``,
``startup_hooks``).
"""

from .app import PLUGINS, Service, serve

__all__ = ["PLUGINS", "Service", "serve"]
