"""The local Ray instance a run starts for itself: what `ray.init()` starts, less two processes nobody uses.

`ray.init()` without an address starts a head node with, besides the GCS, the raylet and the workers, an
autoscaler monitor (which scales a cluster's nodes: a one-machine instance has none to add) and a log monitor
(which tails every worker's log files ten times a second and publishes new lines for the driver to print).
Measured on two cores, the two cost about 0.9 CPU-seconds to start and 0.02 CPU-seconds per second while the
instance lives, a quarter of the instance's idle load: about 3% of a whole run on the bench's corpus.

This module starts the head node the way `ray.init()` does (Ray's `Node` with `RayParams`, as Ray's own
`ray.cluster_utils.Cluster` does) with those two left out, then connects the driver to it. The dashboard's
process (`include_dashboard=False` still starts it, to serve the Jobs and state APIs) would save another 0.8
CPU-seconds, but stays: without it the raylet's dashboard agent logs an error every second looking for it.
Workers' warnings still reach the user: the engine hands back the log records of each part with its result
(`ray_engine._run_part`), and whatever else a worker prints stays in its files in the instance's session
directory. Where this Ray's internals differ (another release), the instance is started by `ray.init()` as
before, with both monitors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from corpusmill.core.environment import patched_environment
from corpusmill.pipelines import ray_leftovers

logger = logging.getLogger(__name__)

# Settings for the Ray instance this engine starts for a run, read by its processes from the environment they
# inherit (unknown names are ignored, and a user's own value wins). Task events and metrics feed the dashboard
# and Prometheus, which nobody can look at on an instance that lives for one run without a dashboard; left on,
# their periodic reporting in every Ray process is about a fifth of the instance's background load (0.02 of
# 0.08 CPU-seconds per second on two cores, measured), which a run pays for its whole duration.
LOCAL_INSTANCE_ENV = {
    "RAY_task_events_report_interval_ms": "0",
    "RAY_enable_metrics_collection": "0",
    "RAY_event_stats": "0",
}


@dataclass
class LocalInstance:
    """A run's own Ray instance, the driver connected."""

    node: Any | None  # Ray's head `Node` when this module started it; None when `ray.init()` did

    @property
    def lean(self) -> bool:
        """Started without the two monitors: the driver prints no worker output, so part results carry their
        log records instead."""
        return self.node is not None

    def close(self) -> None:
        """Disconnect the driver and stop every process of the instance."""
        import ray

        ray.shutdown()  # stops the instance itself when `ray.init()` started it
        if self.node is not None:
            self.node.destroy_external_storage()
            self.node.kill_all_processes(check_alive=False, allow_graceful=True)
            self.node = None
        ray_leftovers.unregister_owner()


def start(num_cpus: int, init_args: dict[str, Any]) -> LocalInstance:
    """Start a local instance with `num_cpus` CPUs and connect this process to it as the driver.

    `init_args` are the driver's `ray.init` settings (logging level); the instance's processes inherit
    `LOCAL_INSTANCE_ENV` and the mark of this run (`ray_leftovers`), by which a later run recognises what
    this one leaves behind if it is killed.
    """
    import ray

    # Ray's own messages at the driver's level from here on, as `ray.init` would set them before its set-up
    # (which logs, for one, that token authentication is on).
    logging.getLogger("ray").setLevel(init_args.get("logging_level", logging.INFO))
    ray_leftovers.stop_leftovers()
    owner = ray_leftovers.register_owner()
    forced = {ray_leftovers.OWNER_VARIABLE: owner} if owner else {}
    with patched_environment(forced, defaults=LOCAL_INSTANCE_ENV):
        node = _head_node(num_cpus)
        if node is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True, **init_args)
            return LocalInstance(node=None)
        try:
            ray.init(address=node.address, log_to_driver=False, **init_args)
        except BaseException:
            node.kill_all_processes(check_alive=False, allow_graceful=True)
            raise
    return LocalInstance(node=node)


def _head_node(num_cpus: int) -> Any | None:
    """A head node as `ray.init()` starts one, without the autoscaler and log monitors; None where this Ray's
    internals do not take these settings."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            enable_token_auth_by_default,
            ensure_token_if_auth_enabled,
        )
        from ray._private.node import Node
        from ray._private.parameter import RayParams

        params = RayParams(
            num_cpus=num_cpus, include_dashboard=False, no_monitor=True, include_log_monitor=False
        )
    except (ImportError, TypeError, AttributeError) as exc:
        logger.debug("starting the local Ray instance with ray.init(): %r", exc)
        return None
    # As `ray.init()` secures a new local instance: token authentication unless RAY_AUTH_MODE says otherwise,
    # with a token created where none exists (the processes it starts, and this driver, read both).
    enable_token_auth_by_default()
    ensure_token_if_auth_enabled({}, create_token_if_missing=True)
    # As `ray.init()` starts its own: the driver stops it (`LocalInstance.close`), a reaper if the driver dies.
    return Node(params, head=True, shutdown_at_exit=False, spawn_reaper=True, ray_init_cluster=True)
