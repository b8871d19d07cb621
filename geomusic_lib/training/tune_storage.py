"""Where a model's study lives (`tune.storage`), and how several workers share one study.

- `sqlite` (the default): `RunDir.tuning_db`, one process at a time (the run's notebooks).
- `journal`: `RunDir.tuning_journal`, an Optuna journal file that local worker processes share.
- any other value without `://`: the path of a journal file (relative to the project root).
- an Optuna RDB URL, e.g. `postgresql+pg8000://tuner:${PGPASSWORD}@db.lan/geomusic`: machines share it.

`${VAR}` is read from the environment, else from `.env`; the params file never holds a password
(`TuneParams` refuses one), and every message, log line and file shows the URL masked (`shown`).
On a shared storage the study is named `<run_name>/<model>`; each trial records its worker
(`host:pid`), so a worker that dies (kill -9) has its trial failed and re-run by the others: at
once on its own host, and after `2 × tune.heartbeat_s` elsewhere (RDB heartbeat).
"""
from __future__ import annotations

import fcntl
import inspect
import os
import re
import socket
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, unquote

from geomusic_lib.core.params import TuneParams
from geomusic_lib.core.rundir import RunDir

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
FINISHED = ("COMPLETE", "PRUNED")
POLL_S = 0.5  # how often a worker whose last trials run elsewhere looks at the study again
UNCLAIMED_S = 60.0  # a running trial that never named its worker is taken for dead after this long


class StorageError(RuntimeError):
    """`tune.storage` cannot be resolved or opened (one line, credentials masked)."""


@dataclass(frozen=True)
class StudyStore:
    """One model's study: its storage kind, what opens it and its name there."""

    kind: str  # sqlite | journal | rdb
    target: str = field(default="", repr=False)  # sqlite, journal: the file; rdb: the URL with its credentials
    study_name: str = ""
    spec: str = "sqlite"  # what reopens it: `sqlite`, a journal's path, or `tune.storage` as written (no secret)

    @property
    def shared(self) -> bool:
        return self.kind != "sqlite"

    @property
    def shown(self) -> str:
        """The storage as messages and files show it: a path, or the URL with its password masked."""
        return masked(self.target) if self.kind == "rdb" else self.target

    def record(self) -> dict[str, str]:
        """What `best_params.json` keeps to reopen the study (`from_record`): no secret."""
        return {"kind": self.kind, "spec": self.spec, "study": self.study_name, "shown": self.shown}


def masked(url: str) -> str:
    """`url` with its password replaced by `***`."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses: mask by pattern
        return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)


def _env_values() -> dict[str, str]:
    try:
        import dotenv
    except ImportError:
        return {}
    path = dotenv.find_dotenv(usecwd=True)
    return {k: v for k, v in dotenv.dotenv_values(path).items() if v is not None} if path else {}


def expand(spec: str) -> str:
    """`spec` with each `${VAR}` from the environment or `.env`; a password is URL-encoded."""
    if not ENV_REF.search(spec):
        return spec
    values = {**_env_values(), **os.environ}
    missing = [name for name in ENV_REF.findall(spec) if not values.get(name)]
    if missing:
        raise StorageError(f"tune.storage: ${{{missing[0]}}} is not set; export {missing[0]}=... or add it to .env")

    def sub(text: str) -> str:
        return ENV_REF.sub(lambda m: values[m[1]], text)
    scheme, sep, rest = spec.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if sep and at and ":" in userinfo:
        user, _, password = userinfo.partition(":")
        return f"{sub(scheme)}://{sub(user)}:{quote(sub(password), safe='')}@{sub(hostpart)}"
    return sub(spec)


def study_store(run: RunDir, name: str, tp: TuneParams, resolve: Callable[[str], Path]) -> StudyStore:
    """Model `name`'s study under `tune.storage`; `resolve` makes a relative journal path absolute."""
    if tp.storage == "sqlite":
        return StudyStore("sqlite", str(run.tuning_db(name)), name, "sqlite")
    study = f"{run.name}/{name}"
    if tp.storage == "journal":
        return StudyStore("journal", str(run.tuning_journal(name)), study, "journal")
    target = expand(tp.storage)
    if "://" in target:
        return StudyStore("rdb", target, study, tp.storage)
    path = str(resolve(target))
    return StudyStore("journal", path, study, path)


def from_record(run: RunDir, name: str, record: dict[str, str] | None) -> StudyStore:
    """The store `StudyStore.record` describes (None: the run's SQLite file)."""
    if not record or record.get("kind") == "sqlite":
        return StudyStore("sqlite", str(run.tuning_db(name)), name, "sqlite")
    if record["kind"] == "journal":
        path = run.tuning_journal(name) if record["spec"] == "journal" else Path(record["spec"])
        return StudyStore("journal", str(path), record["study"], record["spec"])
    return StudyStore("rdb", expand(record["spec"]), record["study"], record["spec"])


class FlockLock:
    """The journal file's lock for Optuna: an `flock` that the kernel frees when its holder dies (even
    by kill -9), where Optuna's own lock files stay behind and stall the other workers for 30 s."""

    def __init__(self, journal: str) -> None:
        self.path, self._fd = journal + ".flock", None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def retry_trial(study, trial) -> None:
    """Queue the settings of a trial whose worker died, for the next free worker."""
    study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number}, skip_if_exists=False)


def open_storage(store: StudyStore, heartbeat_s: int) -> Any:
    """The Optuna storage of `store`: RDB with a heartbeat, or a journal file."""
    import optuna

    if store.kind == "sqlite":
        return f"sqlite:///{store.target}"
    if store.kind == "journal":
        Path(store.target).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(store.target, lock_obj=FlockLock(store.target))
        return optuna.storages.JournalStorage(backend)
    rdb = optuna.storages.RDBStorage
    callback = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in
                inspect.signature(rdb).parameters else "failed_trial_callback")  # its name from Optuna 4.9 on
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return rdb(store.target, heartbeat_interval=heartbeat_s, grace_period=2 * heartbeat_s,
                       engine_kwargs={"pool_pre_ping": True}, **{callback: retry_trial})
    except Exception as err:  # noqa: BLE001 - any driver's error, shown on one line without the password
        raise StorageError(f"tune.storage: cannot open {store.shown} ({scrub(err, store.target)}); "
                           + _hint(err)) from None


def _hint(err: Exception) -> str:
    if isinstance(err, ImportError):  # Optuna words a missing driver as an ImportError
        return ("install a driver: pip install 'geomusic[postgres]' and write the URL as "
                "postgresql+pg8000://user:${PGPASSWORD}@host/db")
    return "check that the server runs, the database exists and the credentials in the environment or .env"


def scrub(err: BaseException | str, url: str) -> str:
    """The first line of an error, with the URL's password (plain and URL-encoded) masked."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    userinfo = url.partition("://")[2].rpartition("@")[0]
    password = userinfo.partition(":")[2]
    for secret in {password, unquote(password)} - {""}:
        text = text.replace(secret, "***")
    return masked(text) if "://" in text else text


# --------------------------------------------------------------------------- workers
def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_seed_offset() -> int:
    """A different sampler seed per worker, so workers never propose the same settings."""
    return zlib.crc32(worker_id().encode()) % 1_000_003


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _dead(trial, host: str) -> bool:
    worker = trial.user_attrs.get("worker")
    if worker is None:
        started = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
        return time.time() - started > UNCLAIMED_S
    where, _, pid = str(worker).rpartition(":")
    return where == host and pid.isdigit() and not _alive(int(pid))


def recover_dead_trials(study) -> list[int]:
    """Fail the running trials whose worker died and queue their settings again; their numbers."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # RDB: trials whose heartbeat stopped (no-op elsewhere)
    host, failed = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if _dead(trial, host):
            try:
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            except (ValueError, RuntimeError):  # another worker failed it first
                continue
            retry_trial(study, trial)
            failed.append(trial.number)
    return failed
