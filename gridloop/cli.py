"""The `gridloop` command: run and validate scenarios, serve the platform, create tenants."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from gridloop.contract import PREFIX, BrokerAddress
from gridloop.contract.rest import MqttAccount, TenantCredentials
from gridloop.contract.summary import RunSummary
from gridloop.scenario.model import Scenario, parse_duration
from gridloop.scenario.overrides import RunOptions
from gridloop.tenant_access import add_run_arguments, mqtt_password, run_access, write_credentials


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _partition(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (e.g. 0/4)") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"partition {text}: need 0 <= K < N")
    return k, n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    view = sub.add_parser("view", help="serve the web view of a finished run's directory")
    view.add_argument("run_dir", type=Path)
    view.add_argument("--port", type=int, default=0, help="default: a free port")
    view.add_argument("--rate", type=float, default=10.0, help="steps replayed per second")

    validate = sub.add_parser("validate", help="check a scenario file; print every error")
    validate.add_argument("scenario", type=Path)

    _platform_parser(sub)
    _accounts_parsers(sub)
    mosaik_sim = sub.add_parser("mosaik-sim", help="serve a gridloop adapter to mosaik as its own process, for a "
                                "sim_config entry like {\"cmd\": \"gridloop mosaik-sim grid %%(addr)s\"} "
                                "(needs the mosaik extra)")
    from gridloop.mosaik import ADAPTERS  # names only: mosaik itself is imported when a simulator is served

    mosaik_sim.add_argument("kind", choices=list(ADAPTERS.values()))
    mosaik_sim.add_argument("addr", help="mosaik's HOST:PORT, as mosaik puts it in %%(addr)s")

    from gridloop.study.command import add_arguments as add_study_arguments

    add_study_arguments(sub.add_parser("study", help="scalability study: sweep parameters, measure, project"))
    return parser


def _run_parser(sub) -> None:
    run = sub.add_parser("run", help="run a scenario")
    run.add_argument("scenario", type=Path)
    run.add_argument("--out", type=Path, help="run directory (default: the scenario's outputs.dir)")
    run.add_argument("--seed", type=int)
    run.add_argument("--until", type=_duration, help="stop after this much simulated time, e.g. 6h")
    run.add_argument("--realtime", action="store_true", default=None, help="pace the run to the wall clock")
    run.add_argument("--speed", type=float, help="with --realtime: simulated seconds per wall second")
    run.add_argument("--broker", help="external broker, mqtt://host:port (default: embedded)")
    run.add_argument("--store", help="sqlite:///file.db or mongodb://host:port/db (default: SQLite in the run dir)")
    run.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    run.add_argument("--api-url", help="an already running platform's REST API (with a tenant's API key)")
    add_run_arguments(run)
    run.add_argument("--partition", type=_partition,
                     help="K/N (K from 0): run substations with index %% N == K (grid.substations > 1), or, "
                     "for one substation, simulate it whole and publish meters with index %% N == K; "
                     "either way readings do not depend on N")
    run.add_argument("--workers", type=int, help="start N local partitions sharing one broker and platform")
    run.add_argument("--helics-broker", help="grid.coupling: the run's HELICS broker (set by --workers)")
    run.add_argument("--wall-start", type=float, help="real time: Unix time at which simulated time 0 starts")
    run.add_argument("--view", action="store_true",
                     help="serve a live web view of the run on loopback (prints its URL)")
    run.add_argument("--view-port", type=int, default=0, help="the live view's port (default: a free one)")
    run.add_argument("--view-key", default=os.environ.get("GRIDLOOP_VIEW_KEY") or None,
                     help="the live view may send commands when the page presents this key ($GRIDLOOP_VIEW_KEY)")


def _platform_parser(sub) -> None:
    platform = sub.add_parser("platform", help="the metering platform alone")
    psub = platform.add_subparsers(dest="platform_command", required=True)
    migrate = psub.add_parser("migrate", help="bring a store written by an older gridloop to this layout")
    migrate.add_argument("--store", required=True, help="sqlite:///path or mongodb://host:port/db")
    serve = psub.add_parser("serve", help="ingest + REST API + command dispatch")
    serve.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    serve.add_argument("--store", default="sqlite:///gridloop-platform.db")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0: a free port (see --url-file)")
    serve.add_argument("--url-file", help="write the API's URL to this file once it listens")
    serve.add_argument("--ingest-workers", type=int, default=1)
    serve.add_argument("--ingest-group", default="ingest",
                       help="MQTT v5 shared-subscription group of the workers of every replica")
    serve.add_argument("--instance", default=os.environ.get("GRIDLOOP_INSTANCE") or None,
                       help="this replica's name, unique among the replicas, in its MQTT client ids "
                            "($GRIDLOOP_INSTANCE; default <hostname>-<pid>). A stable name (a StatefulSet pod's) "
                            "lets a crashed replica resume its broker sessions when it comes back")
    serve.add_argument("--session-expiry-s", type=int,
                       help="how long the broker keeps a crashed replica's sessions (default 3600 with --instance, "
                            "else 300)")
    serve.add_argument("--keep-session", action="store_true",
                       help="on a graceful stop keep the sessions subscribed, so the broker queues this replica's "
                            "share until it is back under the same --instance (one replica); by default a stop "
                            "hands the share to the other replicas")
    serve.add_argument("--cache-max-age-s", type=float, default=5.0,
                       help="hot aggregate answers are at most this old (0: no cache)")
    serve.add_argument("--mqtt-username", help="the platform's broker account (password in $GRIDLOOP_MQTT_PASSWORD "
                                               "or in the file $GRIDLOOP_MQTT_PASSWORD_FILE)")
    serve.add_argument("--tls-ca", help="mqtts: CA certificate that signed the broker's (PEM)")
    serve.add_argument("--tls-cert", help="mqtts: the platform's client certificate (PEM)")
    serve.add_argument("--tls-key", help="mqtts: the platform's client key (PEM)")


def _accounts_parsers(sub) -> None:
    """The broker's, tenants' and devices' accounts."""
    broker = sub.add_parser("broker", help="the MQTT broker's accounts")
    bsub = broker.add_subparsers(dest="broker_command", required=True)
    accounts = bsub.add_parser("accounts", help="create the broker's accounts file with the platform's and the "
                                                 "admin's accounts; their passwords go to DIR/*.password (0600)")
    accounts.add_argument("dir", help="the directory the broker mounts its accounts file from")

    tenant = sub.add_parser("tenant", help="tenants of the platform")
    tsub = tenant.add_subparsers(dest="tenant_command", required=True)
    create = tsub.add_parser("create", help="create a tenant and print its API key")
    create.add_argument("name")
    create.add_argument("--store", default="sqlite:///gridloop-platform.db")
    create.add_argument("--out", type=Path, help="write the API key and broker account to this file (mode 0600, "
                                                 "for `gridloop run --credentials`) instead of printing them")
    create.add_argument("--mosquitto-dir", default="gridloop-mqtt-auth",
                        help="where the broker's accounts file (Mosquitto dynamic-security plugin) is kept")
    create.add_argument("--broker", help="add the account to this running broker instead (its admin account in "
                                         "$GRIDLOOP_BROKER_ADMIN_PASSWORD_FILE or $GRIDLOOP_BROKER_ADMIN="
                                         "user:password)")

    device = sub.add_parser("device", help="devices' own broker accounts")
    dsub = device.add_subparsers(dest="device_command", required=True)
    account = dsub.add_parser("account", help="create one device's (meter, gateway, DIA) broker account: it may "
                                              "publish only its own topics and read only its own commands")
    account.add_argument("tenant")
    account.add_argument("device")
    account.add_argument("--mosquitto-dir", default="gridloop-mqtt-auth",
                         help="where the broker's accounts file (Mosquitto dynamic-security plugin) is kept")
    account.add_argument("--broker", help="add the account to this running broker instead (its admin account as "
                                          "for `tenant create --broker`)")


def _cmd_validate(path: Path) -> int:
    from gridloop.scenario.loader import ScenarioError, load_scenario

    try:
        load_scenario(path)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} error(s) in {path}", file=sys.stderr)
        return 1
    print(f"{path}: valid")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from gridloop.scenario.loader import ScenarioError, load_scenario
    from gridloop.scenario.overrides import RunRefused
    from gridloop.sdk import PlatformError

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    try:
        access = run_access(args)
        if args.broker:
            BrokerAddress.parse(args.broker)
    except (OSError, ValueError) as exc:  # a credentials file unreadable or open to others, a bad --broker
        print(f"gridloop run: {exc}", file=sys.stderr)
        return 2
    options = RunOptions(out=args.out, seed=args.seed, until=args.until, realtime=args.realtime, speed=args.speed,
                         broker=args.broker, store=args.store, progress=args.progress, api_url=args.api_url,
                         api_key=access.api_key, partition=args.partition, wall_start=args.wall_start,
                         view=args.view, view_port=args.view_port, view_key=args.view_key, tenant=access.tenant,
                         mqtt_username=access.mqtt_username, mqtt_password=access.mqtt_password,
                         helics_broker=args.helics_broker)
    if args.workers is None and scenario.grid.coupling is not None and args.partition is None:
        args.workers = 1  # a coupled run always has its MV federate and broker beside the partitions
    try:
        summary = _run(args, scenario, options)
    except ScenarioError as exc:  # found while building the grid (e.g. a network without homes)
        for problem in exc.problems:
            print(f"{args.scenario}: {problem.field}: {problem.reason}", file=sys.stderr)
        return 1
    except RunRefused as exc:  # run dir in use, a key of another tenant, a partition without a platform
        print(f"gridloop run: {exc}", file=sys.stderr)
        return 2
    except PlatformError as exc:  # the platform at --api-url refused the key: say so; anything else is a fault
        if exc.status not in (401, 403):
            raise
        print(f"gridloop run: the platform at {args.api_url or 'the run'} refused the API key: {exc}", file=sys.stderr)
        return 2
    if summary is None:
        return 2
    m = summary.messages
    print(summary.model_dump_json(include={"scenario", "seed", "steps", "wall_s", "meters"}))
    print(f"readings: sampled {m.readings_sampled}, published {m.readings_published}, "
          f"stored {m.readings_stored}, lost {m.readings_lost}, rejected {m.rejected}")
    return 0


def _run(args: argparse.Namespace, scenario: Scenario, options: RunOptions) -> RunSummary | None:
    if args.workers is None:
        from gridloop.engine.run_services import start_run

        started = start_run(scenario, options)  # the broker and platform boot while the engine is imported
        try:
            from gridloop.engine.run import run_scenario
        except BaseException:
            started.services.close()
            raise
        return run_scenario(scenario, options, started)
    if args.view:
        why = "a coupled grid (grid.coupling) runs its partitions in processes of their own" if (
            scenario.grid.coupling is not None) else "use it without --workers"
        print(f"--view shows one process's run: {why}", file=sys.stderr)
        return None
    from gridloop.engine.workers import run_workers

    return run_workers(args.scenario, scenario, options, args.workers)


def _cmd_serve(args: argparse.Namespace) -> int:
    from gridloop.mqtt_client import TlsFiles
    from gridloop.platform.service import PlatformService
    from gridloop.platform.store.layout import StoreLayoutError

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    credentials = (args.mqtt_username, mqtt_password()) if args.mqtt_username else None
    tls = TlsFiles(args.tls_ca, args.tls_cert, args.tls_key) if args.tls_ca or args.tls_cert else None
    try:
        service = PlatformService(args.broker, args.store, args.host, args.port, args.ingest_workers,
                                  admin_key=os.environ.get("GRIDLOOP_ADMIN_KEY"), ingest_group=args.ingest_group,
                                  credentials=credentials, cache_max_age_s=args.cache_max_age_s,
                                  instance=args.instance, session_expiry_s=args.session_expiry_s,
                                  keep_session=args.keep_session, tls=tls)
    except (ValueError, StoreLayoutError) as exc:
        print(f"gridloop platform serve: {exc}", file=sys.stderr)
        return 2
    print(f"gridloop platform {service.instance}: API {service.url}, broker {args.broker}, store {args.store}",
          flush=True)
    service.serve_forever(url_file=args.url_file)
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from gridloop.platform.store import open_store
    from gridloop.platform.store.layout import LAYOUT, StoreLayoutError

    try:
        store = open_store(args.store, migrate=True)
    except (ValueError, StoreLayoutError) as exc:
        print(f"gridloop platform migrate: {exc}", file=sys.stderr)
        return 2
    layout = getattr(store, "layout", LAYOUT)  # a backend with a layout number of its own says so (MongoDB)
    store.close()
    print(f"gridloop platform migrate: {args.store} is at layout {layout}")
    return 0


def _broker_admin() -> tuple[str, str]:
    """The broker's admin account: $GRIDLOOP_BROKER_ADMIN (user:password) or $GRIDLOOP_BROKER_ADMIN_PASSWORD_FILE."""
    from gridloop.broker_accounts import ADMIN_USER

    if path := os.environ.get("GRIDLOOP_BROKER_ADMIN_PASSWORD_FILE"):
        return ADMIN_USER, Path(path).read_text().strip()
    user, _, password = os.environ.get("GRIDLOOP_BROKER_ADMIN", "").partition(":")
    if not password:
        raise SystemExit("--broker needs the broker's admin account: $GRIDLOOP_BROKER_ADMIN (user:password) "
                         "or $GRIDLOOP_BROKER_ADMIN_PASSWORD_FILE (made by `gridloop broker accounts`)")
    return user, password


def _cmd_broker_accounts(args: argparse.Namespace) -> int:
    """The platform's and the admin's accounts, once: an existing accounts file is kept as it is."""
    from gridloop.broker_accounts import MosquittoAuth

    auth = MosquittoAuth(args.dir)
    made = []
    for name, add in (("platform", auth.add_platform), ("admin", auth.add_admin)):
        secret = Path(args.dir) / f"{name}.password"
        if secret.exists():
            continue
        user, password = add()
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        made.append(f"{name}: user {user}, password in {secret}")
    print("\n".join(made) or f"accounts already in {auth.config_file}")
    return 0


def _cmd_tenant_create(args: argparse.Namespace) -> int:
    from gridloop.broker_accounts import DynsecControl, MosquittoAuth
    from gridloop.platform.store import open_store

    store = open_store(args.store)
    try:
        key = store.create_tenant(args.name)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.broker:  # a running broker learns the account at once
        user, password = DynsecControl(BrokerAddress.parse(args.broker), _broker_admin()).add_tenant(args.name)
        where = {"broker": args.broker}
    else:  # the broker reads the accounts file when it starts
        auth = MosquittoAuth(args.mosquitto_dir)
        user, password = auth.add_tenant(args.name)
        where = {"accounts_file": str(auth.config_file)}
    creds = TenantCredentials(tenant=args.name, api_key=key, mqtt=MqttAccount(
        username=user, password=password, topic_prefix=f"{PREFIX}/{args.name}/", **where))
    if args.out:
        write_credentials(args.out, creds)
        print(f"tenant {args.name}: API key and broker account (user {user}) in {args.out}")
    else:
        print(creds.model_dump_json(indent=2, exclude_none=True))
    return 0


def _cmd_device_account(args: argparse.Namespace) -> int:
    from gridloop.broker_accounts import DynsecControl, MosquittoAuth
    from gridloop.contract import TopicKind, topic

    try:
        if args.broker:
            user, password = DynsecControl(BrokerAddress.parse(args.broker), _broker_admin()).add_device(
                args.tenant, args.device)
            where = {"broker": args.broker}
        else:
            auth = MosquittoAuth(args.mosquitto_dir)
            user, password = auth.add_device(args.tenant, args.device)
            where = {"accounts_file": str(auth.config_file)}
    except ValueError as exc:
        print(f"gridloop device account: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"tenant": args.tenant, "device": args.device, "mqtt": {
        "username": user, "password": password, **where,
        "publishes": [topic(args.tenant, kind, args.device) for kind in (TopicKind.TELEMETRY, TopicKind.EVENTS,
                                                                         TopicKind.RESPONSES, TopicKind.STATUS)],
        "reads": [topic(args.tenant, kind, args.device) for kind in (TopicKind.COMMANDS, TopicKind.ACKS)]}},
        indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _cmd_validate(args.scenario)
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "view":
        from gridloop.view.replay import serve_run_dir

        return serve_run_dir(args.run_dir, args.port, args.rate)
    if args.command == "platform":
        return _cmd_migrate(args) if args.platform_command == "migrate" else _cmd_serve(args)
    if args.command == "tenant":
        return _cmd_tenant_create(args)
    if args.command == "broker":
        return _cmd_broker_accounts(args)
    if args.command == "device":
        return _cmd_device_account(args)
    if args.command == "mosaik-sim":
        try:
            from gridloop.mosaik.process import serve
        except ImportError as exc:  # mosaik is an optional extra (Python >= 3.12)
            print(f"gridloop mosaik-sim: {exc}", file=sys.stderr)
            return 2
        return serve(args.kind, args.addr)
    if args.command == "study":
        from gridloop.study.command import main as study_main

        return study_main(args)
    return 2
