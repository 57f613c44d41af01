"""``ServerProcess``: start a server in its own session, wait until it is ready, stop all of it."""

from __future__ import annotations

import inspect
import logging
import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import psutil

from leakguard.servers import firstuse, records
from leakguard.servers.errors import PortStillInUse, ServerDied, ServerError, ServerStartTimeout
from leakguard.servers.logfile import append_note, default_name, new_log_path, read_tail
from leakguard.servers.ports import describe_holders, wait_port_free
from leakguard.servers.procgroup import ProcessGroup
from leakguard.servers.readiness import Ready, make_probe, wait_until_ready

logger = logging.getLogger("leakguard.servers")


class ServerProcess:
    """A server subprocess for tests; use as a context manager or call ``start()``/``stop()``.

    ``cmd`` is an argv list, or a string run by ``/bin/sh -c``. Output goes to ``log_path``
    (a file, never a pipe nobody reads). ``ready`` is ``"tcp"`` (default with a port),
    ``"http"``/``"/path"`` (GET must answer 2xx) or a callable; it must pass
    ``ready_successes`` times in a row. ``env`` is added to the inherited environment (with
    ``PYTHONUNBUFFERED=1`` unless ``env`` says otherwise).
    ``on_death`` says what the pytest plugin does when a module- or session-scoped server died
    before a test that uses it: restart it and warn, or fail that test at once.

    ``start()`` first stops servers that dead runs left behind (``stop_stale_servers``); a server
    started while a longer-lived fixture is set up is then health-checked before each test that
    uses that fixture (see ``watch_server``).
    """

    def __init__(
        self,
        cmd: Sequence[str] | str,
        *,
        port: int | None = None,
        ready: Ready = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        host: str = "127.0.0.1",
        name: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        ready_successes: int = 2,
        stop_timeout: float = 5.0,
        port_free_timeout: float = 5.0,
        max_restarts: int = 3,
        on_death: Literal["restart", "fail"] = "restart",
        run_id: str | None = None,
    ) -> None:
        self.argv: list[str] = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        self.cmd_text = cmd if isinstance(cmd, str) else shlex.join(self.argv)
        self.port = port
        self.host = host
        self.default_name = default_name(cmd)
        self.name = name or self.default_name
        self.run_id = run_id or records.new_run_id()
        # Unbuffered Python output, so a crash or a kill still leaves the last lines in the log;
        # the run mark is the stale-server sweep's second proof that the process is this server.
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
            records.RUN_MARK: self.run_id,
        }
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.ready_successes = max(1, ready_successes)
        self.stop_timeout = stop_timeout
        self.port_free_timeout = port_free_timeout
        self.max_restarts = max_restarts
        if on_death not in ("restart", "fail"):
            raise ValueError(f"on_death must be 'restart' or 'fail', not {on_death!r}")
        self.on_death = on_death
        self.probe = make_probe(ready, host, port)
        self.log_path = Path(log_path) if log_path is not None else None
        self.restarts = 0
        self.stop_notes: list[str] = []
        self._group: ProcessGroup | None = None
        self._record: records.ServerRecord | None = None
        self._last_exit: int | None = None

    # --- public surface -------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._group.pgid if self._group else None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` — no trailing slash: write ``server.url + "/health"``."""
        if self.port is None:
            raise ServerError(f"server {self.name!r} has no port, so no URL: pass port=")
        return f"http://{self.host}:{self.port}"

    @property
    def exit_code(self) -> int | None:
        """The exit code of the last run (negative: the signal that killed it), None if up."""
        if self._group is not None:
            return self._group.exit_code()
        return self._last_exit

    def is_alive(self) -> bool:
        return self._group is not None and not self._group.leader_exited()

    @property
    def died(self) -> bool:
        """Started, not stopped by us, and its process has exited."""
        return self._group is not None and self._group.leader_exited()

    @property
    def dying(self) -> bool:
        """Like `died`, and already while its process is exiting (Linux), before it has exited."""
        return self._group is not None and self._group.leader_exiting()

    def start(self) -> ServerProcess:
        """Start the command and wait until it is ready; raise `ServerError` if it is not."""
        if self._group is not None:
            raise ServerError(f"server {self.name!r} is already started (pid {self.pid})")
        # Named after its fixture before its record is first written; then, first of all, the
        # sweep: a dead run's server may hold the very port this one needs.
        firstuse.join_run(self, inspect.currentframe())
        firstuse.sweep_stale()
        if self.port is not None and not wait_port_free(
            self.port, self.host, self.port_free_timeout
        ):
            # Someone else's process (a developer's own server?) holds it: say so, never kill it.
            raise ServerError(
                f"cannot start server {self.name!r}: port {self.port} is already in use"
                f"{describe_holders(self.port)}; leakguard does not kill processes it did not start"
            )
        self._spawn()
        try:
            self._wait_ready()
        except BaseException:
            self.stop_quietly()
            raise
        return self

    def stop(self) -> list[str]:
        """Stop the whole group (TERM, wait, KILL), reap it, wait until the port binds again."""
        group, self._group = self._group, None
        if group is None:
            return []
        notes = group.stop(self.stop_timeout)
        self._last_exit = group.exit_code()
        if self._record is not None:
            records.remove(self._record)
            self._record = None
        for note in notes:
            logger.warning("server %r (pid %s) %s", self.name, group.pgid, note)
        self.stop_notes.extend(notes)
        if self.port is not None and not wait_port_free(
            self.port, self.host, self.port_free_timeout
        ):
            raise PortStillInUse(
                self.name, self.port, self.port_free_timeout, describe_holders(self.port)
            )
        return notes

    def rename(self, name: str) -> None:
        """Name it (the pytest plugin names a fixture's server after the fixture)."""
        self.name = name
        if self._record is not None:
            self._save_record()

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def death_message(self, during: str | None = None) -> str:
        where = f" during {during}" if during else ""
        return f"server {self.name!r} died{where} (exit {self.exit_code})"

    def ensure_alive(self, during: str | None = None) -> str | None:
        """Restart the server if it died; return the message saying so, or None if it was up.

        A server that was never started, or was stopped on purpose, is simply started.
        """
        if self.is_alive():
            return None
        if not self.died:
            self.start()
            return None
        message = self.death_message(during)
        tail = self.log_tail()
        self._note_in_log(message)
        if self.restarts >= self.max_restarts:
            code = self.exit_code
            self.stop_quietly()  # what is left of its group must not outlive the verdict
            when = f"again after {self.restarts} restarts, so it is not restarted again"
            raise ServerDied(self.name, code, tail, when)
        self.restarts += 1
        try:
            self.restart()
        except ServerError as exc:
            raise ServerError(f"{message}; restart failed: {exc}") from exc
        message += "; restarted"
        self._note_in_log(message)
        logger.warning("%s", message)
        return message

    def log_tail(self, lines: int = 20) -> str:
        return read_tail(self.log_path, lines)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.stop()
        else:
            self.stop_quietly()  # the body's exception is the story; ours would hide it

    def __repr__(self) -> str:
        state = "alive" if self.is_alive() else "stopped"
        return f"<ServerProcess {self.name!r} pid={self.pid} port={self.port} {state}>"

    # --- internals ------------------------------------------------------------------------
    def _spawn(self) -> None:
        if self.log_path is None:
            self.log_path = new_log_path(self.name)
        with open(self.log_path, "ab") as log:
            # Own session: the group id is the leader's pid, and Ctrl-C in the terminal does not
            # reach the server half-way through our teardown.
            popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        leader = psutil.Process(popen.pid)
        self._group = ProcessGroup(leader, popen=popen)
        self._save_record()

    def _save_record(self) -> None:
        group = self._group
        if group is None:
            return
        me = psutil.Process()
        previous = self._record
        self._record = records.ServerRecord(
            pid=group.pgid,
            create_time=group.leader.create_time(),
            pgid=group.pgid,
            run_id=self.run_id,
            owner_pid=me.pid,
            owner_create_time=me.create_time(),
            name=self.name,
            cmd=self.cmd_text,
            port=self.port,
            started_at=previous.started_at if previous else time.time(),
            members=records.identities(group.members.values()),
        )
        records.write(self._record)

    def _wait_ready(self) -> None:
        group = self._group
        assert group is not None
        wait_until_ready(
            self.probe,
            successes=self.ready_successes,
            timeout=self.startup_timeout,
            exited=group.leader_exited,
            on_exit=lambda: ServerDied(
                self.name, group.exit_code(), self.log_tail(), "before it was ready"
            ),
            on_timeout=lambda last_error: ServerStartTimeout(
                self.name,
                self.startup_timeout,
                self.probe.description,
                last_error,
                self.log_tail(),
            ),
        )
        group.refresh()
        self._save_record()  # now with its children: a shell wrapper's server too

    def stop_quietly(self) -> None:
        """Stop, logging instead of raising: for paths where another error is the story."""
        try:
            self.stop()
        except ServerError as exc:
            logger.warning("%s", exc)

    def _note_in_log(self, message: str) -> None:
        append_note(self.log_path, message)
