"""Command-line plumbing shared by ``python -m specjax.sweep``, ``specjax.figures``, ``specjax.bench`` and
``specjax.launch``.

Thin absl glue: CPU device set-up before JAX starts, flag parsing that turns every bad flag, config file or config
field into one line on stderr and exit status 2, and a ``main`` wrapper that does the same for every
:class:`~specjax.errors.SpecjaxError` the library raises (and for file-system errors), and turns SIGINT/SIGTERM
into one line and exit status 130/143.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from absl import app, flags

from specjax.errors import ConfigFlagError, DistributedFlagError, SpecjaxError

EXIT_USAGE = 2


def usable_cores() -> list[int]:
    """The CPU cores this process may run on (its affinity mask: a SLURM task's or ``taskset``'s cores), sorted."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def local_processes(argv: list[str], env: dict[str, str]) -> tuple[int, int] | None:
    """``(process_id, num_processes)`` of a multi-process sweep whose processes all run on this machine (its
    coordinator address is a loopback or this host's name), from ``--coordinator_address``, ``--num_processes``,
    ``--process_id`` or their ``SPECJAX_*`` variables; ``None`` otherwise, or when a value is not a valid count
    (the flag checks then refuse it in one line)."""
    address = _flag_value(argv, "coordinator_address") or env.get("SPECJAX_COORDINATOR_ADDRESS")
    count = _flag_value(argv, "num_processes") or env.get("SPECJAX_NUM_PROCESSES")
    index = _flag_value(argv, "process_id") or env.get("SPECJAX_PROCESS_ID")
    if not address or count is None or index is None:
        return None
    host = address.rsplit(":", 1)[0]  # host:port, [v6]:port
    if host not in _LOCAL_HOSTS and not host.startswith("127.") and host != socket.gethostname():
        return None
    try:
        count, index = int(count), int(index)
    except ValueError:
        return None
    return (index, count) if 0 <= index < count else None


def cpu_layout(argv: list[str], env: dict[str, str], cores: list[int]) -> int:
    """How many single-threaded CPU devices this process gets.

    * ``--cpus=N`` (or ``SPECJAX_CPUS``): ``N`` (array-job shards sharing a machine by hand).
    * The processes of a multi-process sweep on one machine (:func:`local_processes`): each an equal share of the
      usable cores, so ``N`` processes never oversubscribe the machine (each taking every core measured
      1.22-1.25x slower than one process, docs/performance.md).
    * Otherwise every usable core.

    Processes are not pinned to their share: the operating system keeps ``N`` single-threaded processes on ``N``
    cores by itself, and XLA compiles some programs differently for a process whose affinity mask is one core
    (measured: pinned, the quickstart's evaluation gave correlations differing in the last float32 bit from the
    one-process sweep), which would break the bit-identity of layouts.
    """
    asked = _flag_value(argv, "cpus") or env.get("SPECJAX_CPUS")
    if asked is not None:
        try:
            return max(1, int(asked))
        except ValueError:
            return len(cores)  # --cpus=abc: the flag check refuses it in one line
    local = local_processes(argv, env)
    if local is None or local[1] <= 1:
        return len(cores)
    return max(1, len(cores) // local[1])


def configure_cpu_devices(num_devices: int | None = None, argv: list[str] | None = None) -> None:
    """One XLA CPU device per core this process may use, each single-threaded (measured ~2x faster than XLA's
    default threading), with the cores split between the processes of one machine (:func:`cpu_layout`).

    Must run before JAX initialises its backend; flags already present in ``XLA_FLAGS`` are kept. ``num_devices``
    overrides the count (a launcher's ``--cpus_per_shard``). Has no effect on GPU/TPU computations.
    """
    n = num_devices or cpu_layout(sys.argv if argv is None else argv, dict(os.environ), usable_cores())
    current = os.environ.get("XLA_FLAGS", "")
    extra = []
    if "xla_force_host_platform_device_count" not in current:
        extra.append(f"--xla_force_host_platform_device_count={n}")
    if "xla_cpu_multi_thread_eigen" not in current:
        extra.append("--xla_cpu_multi_thread_eigen=false")
    os.environ["XLA_FLAGS"] = " ".join([current, *extra]).strip()


def define_cpus_flag() -> None:
    """``--cpus=N``: CPU devices (cores) of this process (see :func:`cpu_layout`)."""
    if "cpus" in flags.FLAGS:
        return
    flags.DEFINE_integer(
        "cpus",
        None,
        "CPU cores (single-threaded XLA CPU devices) this process uses; default: its share of the usable cores "
        "(all of them, or an equal slice per process of a multi-process sweep on this machine).",
        lower_bound=1,
    )


def maybe_initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    auto: bool = False,
    timeout_s: int | None = None,
) -> bool:
    """Multi-process: ``jax.distributed.initialize`` when a coordinator address is given or ``auto``, else nothing.

    Arguments default to the environment variables ``SPECJAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0),
    ``SPECJAX_NUM_PROCESSES`` and ``SPECJAX_PROCESS_ID``; the command-line programs pass ``--coordinator_address``,
    ``--num_processes``, ``--process_id``, ``--distributed=auto`` (SLURM, Open MPI or a TPU slice detected by JAX)
    and ``--distributed_timeout_s``. Every value is checked before anything starts. Bounded timeouts, and a dead
    process stops the others cleanly (:func:`specjax.runtime.initialize`). Must run before anything
    touches a JAX backend.

    Returns:
      whether ``jax.distributed`` was initialised.

    Raises:
      DistributedFlagError: a count, index, address or timeout that cannot work (names the flag or variable).
    """
    env = os.environ
    address = coordinator_address or env.get("SPECJAX_COORDINATOR_ADDRESS")
    count = _cluster_int(num_processes, "--num_processes", "SPECJAX_NUM_PROCESSES", minimum=1)
    index = _cluster_int(process_id, "--process_id", "SPECJAX_PROCESS_ID", minimum=0)
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or timeout_s < 1):
        raise DistributedFlagError(f"--distributed_timeout_s: must be an integer >= 1 (seconds), got {timeout_s!r}")
    if not address and not auto:
        given = [f"--{n}" for n, v in (("num_processes", num_processes), ("process_id", process_id)) if v is not None]
        if given:
            raise DistributedFlagError(
                f"{given[0]}: a multi-process sweep needs --coordinator_address=HOST:PORT (process 0's) or "
                "--distributed=auto"
            )
        return False
    if address:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DistributedFlagError(
                f"--coordinator_address: expected HOST:PORT of process 0 (a port in 1..65535), got {address!r}"
            )
        if count is None or index is None:
            raise DistributedFlagError("--coordinator_address: needs --num_processes and --process_id too")
    if count is not None and index is not None and index >= count:
        raise DistributedFlagError(
            f"--process_id: must be in [0, {count}) for --num_processes={count} (0 is the coordinator), got {index}"
        )
    from specjax import runtime

    return runtime.initialize(address, count, index, auto=auto, timeout_s=timeout_s or runtime.HEARTBEAT_TIMEOUT_S)


def _cluster_int(
    value: int | None, flag: str, variable: str, minimum: int, error: type[SpecjaxError] = DistributedFlagError
) -> int | None:
    """The flag's value, else the environment variable's, checked to be an integer >= ``minimum`` (else ``error``
    naming the flag or variable); ``None`` if neither is set."""
    name, raw = (flag, value) if value is not None else (variable, os.environ.get(variable))
    if raw is None:
        return None
    try:
        number = int(str(raw).strip())
    except ValueError:
        raise error(f"{name}: must be an integer >= {minimum}, got {raw!r}") from None
    if number < minimum:
        raise error(f"{name}: must be an integer >= {minimum}, got {number}")
    return number


def _tell_peers(error: SpecjaxError, on_refusal: Callable[[SpecjaxError], None] | None) -> None:
    """Multi-process: ``on_refusal(error)`` so that the other processes stop with one line naming this one (the
    sweep passes :func:`specjax.sweep.distribute.report_failure`); nothing otherwise."""
    jax = sys.modules.get("jax")
    if on_refusal is not None and jax is not None and jax.distributed.is_initialized():
        on_refusal(error)


def define_distributed_flags() -> None:
    """``--coordinator_address``, ``--num_processes``, ``--process_id``, ``--distributed``,
    ``--distributed_timeout_s`` (see :func:`maybe_initialize_distributed`)."""
    if "coordinator_address" in flags.FLAGS:
        return
    flags.DEFINE_string("coordinator_address", None, "Multi-process: host:port of process 0 (jax.distributed).")
    flags.DEFINE_integer("num_processes", None, "Multi-process: number of processes (jax.distributed).")
    flags.DEFINE_integer("process_id", None, "Multi-process: index of this process (jax.distributed).")
    flags.DEFINE_enum(
        "distributed", "off", ["off", "auto"], "auto: jax.distributed.initialize() detects SLURM/Open MPI/TPU."
    )
    flags.DEFINE_integer(
        "distributed_timeout_s", None, "Multi-process: heartbeat timeout; a dead process is noticed within it (30)."
    )


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/specjax/jax`` (``~/.cache/specjax/jax``): where compiled programs persist between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "specjax" / "jax"


def configure_compilation_cache(path: str | None) -> Path | None:
    """Switches on JAX's persistent compilation cache in ``path`` (``'none'`` or ``''``: off).

    ``None`` means the default: ``JAX_COMPILATION_CACHE_DIR`` if set, else :func:`default_cache_dir`. Every program
    is cached however fast it compiled, so a second run of the same sweep starts without compiling. A folder that
    cannot be created leaves the cache off (a warning; never an error: the cache only saves time).

    Returns:
      the cache folder, or ``None`` when off.
    """
    import jax

    if path is not None and path.strip().lower() in ("", "none"):
        return None
    folder = Path(path or os.environ.get("JAX_COMPILATION_CACHE_DIR") or default_cache_dir()).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"warning: compilation cache off ({folder}: {e.strerror})", file=sys.stderr)
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def define_cache_flag() -> None:
    """``--compilation_cache=DIR|none`` (see :func:`configure_compilation_cache`)."""
    if "compilation_cache" in flags.FLAGS:
        return
    flags.DEFINE_string(
        "compilation_cache",
        None,
        "Folder of JAX's persistent compilation cache (default: $JAX_COMPILATION_CACHE_DIR or ~/.cache/specjax/jax); "
        "'none' turns it off.",
    )


def fail(prog: str, message: str, at_once: bool = False) -> None:
    """Prints ``prog: error: message`` (on one line) to stderr and exits with status 2; ``at_once``: without
    running exit handlers (a half-started distributed runtime cannot be shut down)."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    if at_once:
        sys.stdout.flush()
        os._exit(EXIT_USAGE)
    sys.exit(EXIT_USAGE)


def _flag_value(argv: list[str], name: str) -> str | None:
    """The last value given as ``--name=VALUE`` or ``--name VALUE`` in ``argv``, or ``None``."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}=") or arg.startswith(f"-{name}="):
            value = arg.split("=", 1)[1]
        elif arg in (f"--{name}", f"-{name}") and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def _override_names(argv: list[str], name: str) -> list[str]:
    """Dotted field paths of the ``--name.<field>=value`` overrides in ``argv`` (``--noname.flag`` included)."""
    found = []
    for arg in argv:
        m = re.match(rf"^--?(?:no)?{re.escape(name)}\.([^=]+)", arg)
        if m:
            found.append(m.group(1))
    return found


def check_config_flag(argv: list[str], name: str = "config") -> None:
    """Loads the config file named by ``--<name>`` and checks its overrides before absl parses them.

    ml_collections reports a missing file only when the config is first used, a file whose ``get_config`` raises
    with a whole traceback, and an unknown override field with a bare ``KeyError``; this turns each into one line
    naming the file or the field.

    Raises:
      ConfigFlagError: the file is missing, cannot be loaded, does not return a ``ConfigDict``, or an override
        names a field it does not have.
    """
    import importlib.machinery
    import importlib.util

    from ml_collections import config_dict

    path = _flag_value(argv, name)
    if path is None:
        return
    file, *config_args = path.split(":", 1)
    if not os.path.isfile(file):
        raise ConfigFlagError(f"--{name}: config file not found: {file}")
    try:  # as ml_collections loads it: execute the file as a module, call get_config
        loader = importlib.machinery.SourceFileLoader(f"_{name}_file_check", file)
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
        loader.exec_module(module)
        if not callable(getattr(module, "get_config", None)):
            raise ConfigFlagError(f"--{name}: config file {file} defines no get_config()")
        cfg = module.get_config(*config_args)
    except ConfigFlagError:
        raise
    except Exception as e:  # noqa: BLE001 -- a config file can raise anything; report it in one line
        raise ConfigFlagError(f"--{name}: cannot load config file {file} ({type(e).__name__}: {e})") from None
    if not isinstance(cfg, config_dict.ConfigDict):
        raise ConfigFlagError(
            f"--{name}: config file {file}: get_config() returned {type(cfg).__name__}, expected a ConfigDict"
        )
    for field in _override_names(argv, name):
        node = cfg
        for i, part in enumerate(field.split(".")):
            if not isinstance(node, config_dict.ConfigDict) or part not in node:
                known = f"{name}.{'.'.join(field.split('.')[:i])}" if i else name
                raise ConfigFlagError(f"--{name}.{field}: unknown config field (not in {known} from {file})")
            node = node[part]


def flags_parser(prog: str) -> Callable[[list[str]], list[str]]:
    """An absl ``flags_parser`` that reports bad flags, config files and config overrides in one line."""

    def parse(argv: list[str]) -> list[str]:
        if "config" in flags.FLAGS:
            try:
                check_config_flag(argv, "config")
            except ConfigFlagError as e:
                fail(prog, str(e))
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            fail(prog, str(e).splitlines()[0])
        except (AttributeError, KeyError) as e:
            fail(prog, f"unknown config field {str(e).strip(chr(34)).strip(chr(39))}")
        except FileNotFoundError as e:
            fail(prog, f"config file not found: {e.filename or e}")
        except (OSError, SyntaxError, ImportError, ValueError, TypeError) as e:
            fail(prog, f"cannot load config ({type(e).__name__}: {e})")
        return []

    return parse


def run(
    main: Callable[[list[str]], None],
    prog: str,
    compilation_cache: str | None = None,
    on_refusal: Callable[[SpecjaxError], None] | None = None,
) -> None:
    """``app.run`` with one-line errors for bad flags and for every :class:`~specjax.errors.SpecjaxError`.

    SIGINT/SIGTERM stop with one line and status 130/143; a sweep resumes from its last checkpoint when re-run. A
    file-system error that escaped the library (``OSError``) is also one line naming the path, status 2.

    ``compilation_cache`` is the program's default for ``--compilation_cache`` (``None``: the user's cache folder;
    the benchmark passes ``'none'`` so that its compile times are measured, not loaded). ``on_refusal`` is called
    with a refusal before the one line is printed when this is one process of a multi-process run (the sweep tells
    its peers: :func:`specjax.sweep.distribute.report_failure`; ``cli`` sits below the sweep and does not import it).
    """

    def guarded(argv):
        from absl import logging

        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        try:
            f = flags.FLAGS
            _cluster_int(f.cpus, "--cpus", "SPECJAX_CPUS", minimum=1, error=ConfigFlagError)  # as the flag's bound
            maybe_initialize_distributed(
                f.coordinator_address,
                f.num_processes,
                f.process_id,
                auto=f.distributed == "auto",
                timeout_s=f.distributed_timeout_s,
            )
            configure_compilation_cache(f.compilation_cache if f["compilation_cache"].present else compilation_cache)
            main(argv)
        except SpecjaxError as e:
            _tell_peers(e, on_refusal)
            fail(prog, str(e), at_once=getattr(e, "exit_at_once", False))
        except KeyboardInterrupt as e:
            status = getattr(e, "exit_status", 130)
            name = "interrupted" if status == 130 else f"stopped by signal {status - 128}"
            print(f"{prog}: {name}; re-run the same command to resume", file=sys.stderr, flush=True)
            sys.exit(status)
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            fail(prog, f"{where}{e.strerror or e}")

    define_distributed_flags()
    define_cache_flag()
    define_cpus_flag()
    app.run(guarded, flags_parser=flags_parser(prog))
