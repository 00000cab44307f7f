"""``wardwatch``: the command line; parses flags and hands over to the composition root."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from wardwatch.settings import Settings, SettingsError, from_env

if TYPE_CHECKING:
    from wardwatch.service import Options


def _settings(args: argparse.Namespace) -> Settings:
    return from_env(
        os.environ,
        mqtt_url=getattr(args, "mqtt_url", None),
        database_url=getattr(args, "database_url", None),
        http_addr=getattr(args, "http_addr", None),
        client_id=getattr(args, "client_id", None),
        share_group=getattr(args, "share_group", None),
    )


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _waveform_hz(check: str) -> Callable[[str], float | None]:
    """A parser of a simulated waveform's rate (``simulator.stream.<check>``); 0 turns it off."""

    def parse(text: str) -> float | None:
        from simulator import stream  # noqa: PLC0415 - numpy only when asked

        value = float(text)
        if value == 0:
            return None
        try:
            return float(getattr(stream, check)(value))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


_accel_hz = _waveform_hz("check_accel_hz")
_ppg_hz = _waveform_hz("check_ppg_hz")
_ecg_hz = _waveform_hz("check_ecg_hz")


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset, e.g. {text}+00:00")
    return value


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(_sig: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


# --- commands ----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from wardwatch.service import running  # noqa: PLC0415 - keeps `--help` fast

    settings = _settings(args)
    options = _policy_options(args, settings)
    if options is None:
        return 2
    stop = threading.Event()
    _stop_on_signals(stop)
    with running(settings, options) as svc:
        print(f"wardwatch running; dashboard at {svc.dashboard_url}", flush=True)
        stop.wait()
    return 0


def cmd_watchdog(args: argparse.Namespace) -> int:
    from alerts.notify import Channel, LogChannel, WebhookChannel  # noqa: PLC0415
    from alerts.watchdog import Watch  # noqa: PLC0415
    from wardwatch import watchdog  # noqa: PLC0415

    channels: list[Channel] = [LogChannel()]
    webhook = args.webhook_url or os.environ.get("WARDWATCH_WATCHDOG_WEBHOOK_URL")
    if webhook:
        channels.append(WebhookChannel(webhook))
    stop = threading.Event()
    _stop_on_signals(stop)
    print(f"watching {args.metrics_url} every {args.interval:g} s", flush=True)
    watchdog.run(
        args.metrics_url,
        channels,
        interval=timedelta(seconds=args.interval),
        no_batch_after=timedelta(minutes=args.stall_after),
        watch=Watch(for_=timedelta(minutes=args.alarm_after)),
        stop=stop,
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage import migrate  # noqa: PLC0415

    applied = migrate.upgrade(_settings(args).database_url)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_enrol(args: argparse.Namespace) -> int:
    import psycopg  # noqa: PLC0415

    from alerts.policy import OverrideError, Overrides, check_overrides  # noqa: PLC0415
    from storage import assignments, migrate  # noqa: PLC0415
    from storage import policy as policy_store  # noqa: PLC0415
    from storage.views import NotFoundError  # noqa: PLC0415

    settings = _settings(args)
    now = datetime.now(UTC)
    wanted: Overrides | None = None
    if args.spo2_scale != 1:
        # RCP NEWS2 2017: Scale 2 only for prescribed hypercapnic targets, so a clinician is named.
        wanted = Overrides(spo2_scale=args.spo2_scale)
        try:
            check_overrides(
                wanted,
                set_by=args.clinician or "",
                reason=args.reason or "",
                now=now,
                previous=wanted,
            )
        except OverrideError as exc:
            print(
                f"wardwatch enrol: --spo2-scale 2 needs --clinician and --reason: {exc}",
                file=sys.stderr,
            )
            return 2
    migrate.upgrade(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        try:
            # The scale a clinician set stays unless this enrolment sets one (with its audit).
            kept = policy_store.current_overrides(conn, args.patient)
        except NotFoundError:
            kept = None
        try:
            a = assignments.enrol(
                conn,
                device_id=args.device,
                patient_id=args.patient,
                ward=args.ward,
                valid_from=args.since or now,
                valid_until=args.until,
                spo2_scale=kept.overrides.spo2_scale if kept else 1,
                bed=args.bed,
            )
        except assignments.EnrolmentError as exc:
            print(f"wardwatch enrol: {exc}", file=sys.stderr)
            return 1
        if kept is not None and wanted is None and kept.overrides.spo2_scale != 1:
            scale = kept.overrides.spo2_scale
            note = f"patient {args.patient} keeps SpO2 Scale {scale} set by {kept.set_by}"
            print(f"wardwatch enrol: {note}", file=sys.stderr)
        if wanted is not None:
            base = kept.overrides if kept else Overrides()
            policy_store.set_overrides(
                conn,
                args.patient,
                Overrides(wanted.spo2_scale, base.spo2_target_pct, base.pause),
                set_by=args.clinician,
                reason=args.reason,
                now=now,
            )
    until = a.valid_until.isoformat() if a.valid_until else "further notice"
    print(
        f"device {a.device_id} → patient {a.patient_id} ({a.ward}) from "
        f"{a.valid_from.isoformat()} until {until}"
    )
    return 0


def _selection(args: argparse.Namespace) -> object:
    from storage.quarantine import Selection  # noqa: PLC0415

    return Selection(
        reason=args.reason,
        device_id=args.device,
        ids=tuple(args.id or ()),
        include_retried=getattr(args, "all", False),
        limit=args.limit,
    )


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    import psycopg  # noqa: PLC0415

    from storage import migrate, quarantine  # noqa: PLC0415

    settings = _settings(args)
    migrate.upgrade(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        rows = quarantine.select(conn, _selection(args))  # type: ignore[arg-type]
        waiting = quarantine.counts_by_reason(conn)
    for r in rows:
        retried = f" (retried {r.retried_at:%Y-%m-%d %H:%M})" if r.retried_at else ""
        print(f"{r.id}\t{r.received_at:%Y-%m-%d %H:%M:%S}Z\t{r.device_id or '-'}\t{r.reason}"
              f"\t{r.detail}{retried}")  # fmt: skip
    summary = ", ".join(f"{reason} {n}" for reason, n in sorted(waiting.items())) or "none"
    print(f"waiting for retry: {summary}", file=sys.stderr)
    return 0


def cmd_quarantine_retry(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from ingest import pipeline as pipe  # noqa: PLC0415
    from ingest.requeue import retry  # noqa: PLC0415
    from storage import migrate  # noqa: PLC0415

    settings = _settings(args)
    migrate.upgrade(settings.database_url)
    p = pipe.Pipeline(
        settings.database_url,
        settings=pipe.Settings(),
        metrics=pipe.PipelineMetrics.create(CollectorRegistry()),
        clock=lambda: datetime.now(UTC),
    )
    try:
        done = retry(p, settings.database_url, _selection(args), now=datetime.now(UTC))  # type: ignore[arg-type]
    finally:
        p.close()
    print(f"retried {done.messages} messages: {done.stored} readings stored,"
          f" {done.quarantined_again} quarantined again")  # fmt: skip
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from wardwatch import demo  # noqa: PLC0415

    stop = threading.Event()
    _stop_on_signals(stop)
    stats = demo.simulate(
        _settings(args),
        patients=args.patients,
        speed=args.speed,
        scenario=args.scenario,
        minutes=args.minutes,
        seed=args.seed,
        enrol=not args.no_enrol,
        stop=stop,
        waveforms=_waveforms(args),
    )
    print(stats)
    return 0


def _waveforms(args: argparse.Namespace) -> Any:
    from wardwatch.demo import Waveforms  # noqa: PLC0415

    return Waveforms(args.accel_hz, args.accel_patients, args.ppg_hz, args.ppg_patients,
                     args.ecg_hz, args.ecg_patients)  # fmt: skip


def cmd_replay(args: argparse.Namespace) -> int:
    from wardwatch import demo  # noqa: PLC0415

    stop = threading.Event()
    _stop_on_signals(stop)
    print(demo.replay(_settings(args), Path(args.file), speed=args.speed, stop=stop))
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from wardwatch import demo  # noqa: PLC0415

    stop = threading.Event()
    _stop_on_signals(stop)
    print(demo.record(_settings(args), Path(args.out), minutes=args.minutes, stop=stop))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from wardwatch import demo  # noqa: PLC0415

    stop = threading.Event()
    _stop_on_signals(stop)
    return demo.run_demo(
        data_dir=Path(args.data_dir),
        patients=args.patients,
        speed=args.speed,
        minutes=args.minutes,
        http_addr=args.http_addr,
        seed=args.seed,
        stop=stop,
        prefer_installed=args.services == "auto",
        waveforms=_waveforms(args),
    )


def cmd_devices_provision(args: argparse.Namespace) -> int:
    from wardwatch import devices  # noqa: PLC0415

    out = Path(args.out)
    try:
        credentials = devices.provision(args.device, out, ingestor=args.ingestor)
    except devices.ProvisionError as exc:
        print(f"wardwatch devices provision: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"wardwatch devices provision: cannot write to {out}: {exc}", file=sys.stderr)
        return 1
    # Credentials on stdout, one "name<TAB>url" line each, so `> file` captures only them;
    # the operator's instructions on stderr. Passwords go nowhere else: not to the log.
    for c in credentials:
        print(f"{c.username}\t{c.url(args.broker_host, args.port)}")
    print(
        f"wrote {out / devices.PASSWORD_FILE} and {out / devices.ACL_FILE}; "
        "reload Mosquitto to apply them: kill -HUP $(pidof mosquitto) "
        "(or systemctl reload mosquitto). Clients using a replaced password are disconnected.\n"
        "Each URL above is a secret: hand it over once, by a secure channel; "
        "it cannot be shown again.",
        file=sys.stderr,
    )
    if args.ingestor:
        print(
            f"set WARDWATCH_MQTT_URL to the {args.ingestor} URL, adding ?ca=/path/to/ca.pem "
            "if the broker's CA is not in the system's trust store.",
            file=sys.stderr,
        )
    return 0


def cmd_evaluate_welltory(args: argparse.Namespace) -> int:
    from wardwatch import evaluate  # noqa: PLC0415 - pandas only when evaluating

    try:
        print(evaluate.welltory(Path(args.data), as_json=args.json))
    except evaluate.EvaluationDataError as exc:
        print(f"wardwatch evaluate welltory: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_evaluate_simulated(args: argparse.Namespace) -> int:
    from wardwatch import evaluate  # noqa: PLC0415 - pandas only when evaluating

    if args.patients < 1 or args.days < 14:
        print("wardwatch evaluate simulated: need at least 1 patient and 14 days", file=sys.stderr)
        return 2
    text = evaluate.simulated(
        args.patients, days=args.days, seed=args.seed, scenario=args.scenario, as_json=args.json
    )
    print(text)
    return 0


def _policy_options(args: argparse.Namespace, settings: Settings) -> Options | None:
    """Service options with the policy file, if one is given; None (after saying why) if bad."""
    from alerts.policy import PolicyError, parse  # noqa: PLC0415
    from wardwatch.service import Options, available_channels  # noqa: PLC0415

    path = getattr(args, "policy_file", None) or os.environ.get("WARDWATCH_POLICY_FILE")
    if not path:
        return Options()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"wardwatch: cannot read the policy file {path}: {exc.strerror}", file=sys.stderr)
        return None
    try:
        parse(text, path, channels=available_channels(settings))
    except PolicyError as exc:
        print(f"wardwatch: refusing to start, the policy is invalid:\n{exc}", file=sys.stderr)
        return None
    return Options(policy_text=text, policy_source=path)


def _read_policy(path: str, command: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"wardwatch policy {command}: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None


def cmd_policy_check(args: argparse.Namespace) -> int:
    from alerts.policy import PolicyError, parse  # noqa: PLC0415

    text = _read_policy(args.file, "check")
    if text is None:
        return 2
    try:
        policy = parse(text, args.file)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 2
    wards = ", ".join(sorted(policy.wards)) or "none"
    print(f"{args.file}: valid; wards with their own settings: {wards}")
    return 0


def cmd_policy_show(args: argparse.Namespace) -> int:
    from alerts.policy import dump  # noqa: PLC0415
    from storage import migrate  # noqa: PLC0415
    from storage import policy as policy_store  # noqa: PLC0415

    settings = _settings(args)
    migrate.upgrade(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        stored = policy_store.current(conn)
    if stored.version == 0:
        print("no policy stored: the built-in policy is in force", file=sys.stderr)
    else:
        print(
            f"version {stored.version}, set by {stored.set_by} at {stored.set_at}", file=sys.stderr
        )
    text = dump(stored.policy) if args.resolved or stored.version == 0 else stored.text
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


def cmd_policy_set(args: argparse.Namespace) -> int:
    from alerts.policy import PolicyError  # noqa: PLC0415
    from storage import migrate  # noqa: PLC0415
    from storage import policy as policy_store  # noqa: PLC0415
    from wardwatch.service import available_channels  # noqa: PLC0415

    settings = _settings(args)
    text = _read_policy(args.file, "set")
    if text is None:
        return 2
    migrate.upgrade(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        try:
            stored = policy_store.save(
                conn,
                text,
                set_by=args.user,
                at=datetime.now(UTC),
                source=args.file,
                channels=available_channels(settings),
            )
        except PolicyError as exc:
            print(f"{exc}\nthe policy in force is unchanged", file=sys.stderr)
            return 2
    print(f"policy version {stored.version} in force")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from alerts.report import as_dict, as_table  # noqa: PLC0415
    from storage import migrate  # noqa: PLC0415
    from storage.report import report  # noqa: PLC0415

    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(days=7)
    if since >= until:
        print("wardwatch report: --since must be before --until", file=sys.stderr)
        return 2
    settings = _settings(args)
    migrate.upgrade(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        result = report(conn, since=since, until=until, ward=args.ward)
    if args.json:
        print(json.dumps(as_dict(result), indent=2))
    else:
        print(as_table(result))
    return 0


# --- parser ------------------------------------------------------------------------------------


def _connection_flags(p: argparse.ArgumentParser, *, http: bool = False) -> None:
    p.add_argument("--mqtt-url", help="broker URL (env WARDWATCH_MQTT_URL)")
    p.add_argument("--database-url", help="libpq URL (env WARDWATCH_DATABASE_URL)")
    if http:
        p.add_argument("--http-addr", help="dashboard HOST:PORT (env WARDWATCH_HTTP_ADDR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wardwatch",
        description="Remote monitoring for virtual wards: wearables → NEWS2 → nurse alerts.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_service_commands(sub)
    _add_admin_commands(sub)
    _add_simulator_commands(sub)
    _add_evaluation_commands(sub)
    _add_report_command(sub)
    return parser


def _add_service_commands(sub: Any) -> None:
    """demo and run: the pipeline itself."""
    p = sub.add_parser("demo", help="embedded broker + database, simulated ward, dashboard")
    p.add_argument("--patients", type=int, default=24)
    p.add_argument("--speed", type=_positive, default=60.0, help="simulated seconds per second")
    p.add_argument("--minutes", type=_positive, default=None, help="stop after M minutes")
    p.add_argument("--data-dir", default=".data/demo")
    p.add_argument("--http-addr", default=os.environ.get("WARDWATCH_HTTP_ADDR", "127.0.0.1:8080"))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--services",
        choices=("auto", "pip"),
        default="auto",
        help="auto: installed mosquitto/PostgreSQL if present; pip: always the pip-installed ones",
    )
    p.add_argument(
        "--accel-hz",
        type=_accel_hz,
        default=10.0,
        help="raw wrist accelerometer rate of the first --accel-patients devices, 5-100 Hz;"
        " 0 turns it off (default %(default)s)",
    )
    p.add_argument(
        "--accel-patients",
        type=_count,
        default=2,
        help="how many patients' devices send the accelerometer (default %(default)s)",
    )
    p.add_argument(
        "--ppg-hz",
        type=_ppg_hz,
        default=25.0,
        help="PPG rate of the first --ppg-patients devices, which then send no heart or"
        " breathing rate (derived from the PPG instead); 0 turns it off (default %(default)s)",
    )
    p.add_argument(
        "--ppg-patients",
        type=_count,
        default=1,
        help="how many patients' devices stream PPG (default %(default)s)",
    )
    p.add_argument(
        "--ecg-hz",
        type=_ecg_hz,
        default=125.0,
        help="ECG rate of the chest patches of the next --ecg-patients, which then send no heart"
        " rate (derived from the ECG instead); 0 turns it off (default %(default)s)",
    )
    p.add_argument(
        "--ecg-patients",
        type=_count,
        default=1,
        help="how many patients (after those streaming PPG) wear an ECG patch"
        " (default %(default)s)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="the long-running service: ingest, scoring, alerts, dashboard")
    _connection_flags(p, http=True)
    p.add_argument(
        "--client-id", help="MQTT session name, one per worker (env WARDWATCH_MQTT_CLIENT_ID)"
    )
    p.add_argument(
        "--share-group",
        help="split devices' messages with the other workers of this group"
        " (env WARDWATCH_MQTT_SHARE_GROUP)",
    )
    p.add_argument(
        "--policy-file",
        help="alerting policy to install at start; refused with its line if invalid"
        " (env WARDWATCH_POLICY_FILE, docs/policy.md)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "watchdog",
        help="a separate process that alerts when the service stalls (docs/alerts.md)",
    )
    p.add_argument(
        "--metrics-url",
        default="http://127.0.0.1:8080/metrics",
        help="the service's /metrics (default %(default)s)",
    )
    p.add_argument(
        "--webhook-url",
        help="where to send the alarm besides the log (env WARDWATCH_WATCHDOG_WEBHOOK_URL);"
        " use a channel that does not go through wardwatch's broker or database",
    )
    p.add_argument("--interval", type=_positive, default=15.0, help="seconds between looks")
    p.add_argument(
        "--stall-after",
        type=_positive,
        default=5.0,
        help="minutes without a batch, while devices are enrolled, that count as a stall",
    )
    p.add_argument(
        "--alarm-after", type=_positive, default=2.0, help="minutes trouble must last to alarm"
    )
    p.set_defaults(func=cmd_watchdog)


def _add_admin_commands(sub: Any) -> None:
    """db, enrol, quarantine, devices: what a trust's IT team runs."""
    p = sub.add_parser("db", help="database administration")
    db = p.add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="apply pending schema migrations (idempotent)")
    _connection_flags(up)
    up.set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("enrol", help="assign a device to a patient on a ward, from now")
    p.add_argument("--device", required=True)
    p.add_argument("--patient", required=True)
    p.add_argument("--ward", required=True)
    p.add_argument("--since", type=_when, help="start of the assignment (default now)")
    p.add_argument("--until", type=_when, help="end of the assignment")
    p.add_argument(
        "--spo2-scale",
        type=int,
        choices=(1, 2),
        default=1,
        help="NEWS2 SpO2 scale 2 for prescribed hypercapnic targets, with --clinician and"
        " --reason; 1 keeps a scale a clinician set (change it through the overrides API)",
    )
    p.add_argument(
        "--bed", help="a bed or room label shown in notifications (kept if not given again)"
    )
    p.add_argument("--clinician", help="who prescribes the SpO2 scale (kept in the audit)")
    p.add_argument("--reason", help="why, e.g. 'COPD, hypercapnic, target 88-92 %%'")
    _connection_flags(p)
    p.set_defaults(func=cmd_enrol)

    _add_policy_commands(sub)

    p = sub.add_parser("quarantine", help="what ingest set aside, and why; put it through again")
    q = p.add_subparsers(dest="quarantine_command", required=True)
    for name, func, text in (
        ("list", cmd_quarantine_list, "list quarantined messages with their reasons"),
        ("retry", cmd_quarantine_retry, "re-ingest quarantined messages (after a fix)"),
    ):
        qp = q.add_parser(name, help=text)
        qp.add_argument("--reason", help='e.g. "unknown device"')
        qp.add_argument("--device")
        qp.add_argument("--id", type=int, action="append", help="a quarantine row id (repeatable)")
        qp.add_argument("--limit", type=int, default=1000)
        if name == "list":
            qp.add_argument("--all", action="store_true", help="include rows already retried")
        _connection_flags(qp)
        qp.set_defaults(func=func)

    p = sub.add_parser("devices", help="broker credentials for devices (docs/security.md)")
    dev = p.add_subparsers(dest="devices_command", required=True)
    prov = dev.add_parser(
        "provision",
        help="new password and ACL entries per device; rotates an existing device's password",
    )
    prov.add_argument(
        "--device", action="append", default=[], help="device id; repeat for more devices"
    )
    prov.add_argument("--ingestor", help="also (re)provision the ingestor's read-only user NAME")
    prov.add_argument(
        "--out", required=True, help="folder of Mosquitto's password_file and acl_file"
    )
    prov.add_argument("--broker-host", default="localhost", help="host name the devices connect to")
    prov.add_argument("--port", type=int, default=8883, help="the broker's TLS port")
    prov.set_defaults(func=cmd_devices_provision)


def _add_policy_commands(sub: Any) -> None:
    """policy: the alerting policy as data (docs/policy.md)."""
    p = sub.add_parser("policy", help="the alerting policy: check, show, set (docs/policy.md)")
    pol = p.add_subparsers(dest="policy_command", required=True)
    c = pol.add_parser("check", help="check a policy file; exit 2 naming the line of each error")
    c.add_argument("file")
    c.set_defaults(func=cmd_policy_check)
    s = pol.add_parser("show", help="print the policy in force (its text; --resolved: every value)")
    s.add_argument("--resolved", action="store_true", help="every setting, as parsed")
    _connection_flags(s)
    s.set_defaults(func=cmd_policy_show)
    s = pol.add_parser("set", help="install a policy file as the next version")
    s.add_argument("file")
    s.add_argument("--user", required=True, help="who sets the policy (kept with the version)")
    _connection_flags(s)
    s.set_defaults(func=cmd_policy_set)


def _add_simulator_commands(sub: Any) -> None:
    """simulate, replay, record: devices without patients."""
    from simulator.physiology import SCENARIOS  # noqa: PLC0415 - numpy only when parsing args

    p = sub.add_parser("simulate", help="publish simulated patients' wearable readings")
    p.add_argument("--patients", type=int, default=24)
    p.add_argument("--speed", type=_positive, default=1.0)
    p.add_argument(
        "--scenario",
        default=None,
        choices=sorted(SCENARIOS),
        help="every patient follows this scenario (default: a mixed ward; docs/simulator.md)",
    )
    p.add_argument("--minutes", type=_positive, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-enrol", action="store_true", help="do not enrol the simulated devices")
    p.add_argument(
        "--accel-hz",
        type=_accel_hz,
        default=None,
        help="also publish each device's raw wrist accelerometer at this rate, 5-100 Hz, as"
        " waveform chunks (default: off; docs/simulator.md)",
    )
    p.add_argument(
        "--accel-patients",
        type=_count,
        default=None,
        help="only the first N patients' devices send the accelerometer (default: all)",
    )
    p.add_argument(
        "--ppg-hz",
        type=_ppg_hz,
        default=None,
        help="devices stream their PPG at this rate, 20-100 Hz, and send no heart or breathing"
        " rate: wardwatch derives them (default: off; docs/simulator.md)",
    )
    p.add_argument(
        "--ppg-patients",
        type=_count,
        default=None,
        help="only the first N patients' devices stream a PPG (default: all)",
    )
    p.add_argument(
        "--ecg-hz",
        type=_ecg_hz,
        default=None,
        help="the patients after those streaming PPG wear a chest patch streaming its ECG at"
        " this rate, 120-500 Hz, and no heart rate: wardwatch derives it (default: off)",
    )
    p.add_argument(
        "--ecg-patients",
        type=_count,
        default=None,
        help="only N patients wear an ECG patch (default: all those without a PPG)",
    )
    _connection_flags(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("replay", help="publish a JSON Lines recording with its original timing")
    p.add_argument("file")
    p.add_argument("--speed", type=_positive, default=1.0)
    _connection_flags(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("record", help="record what devices publish to a JSON Lines file")
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=_positive, default=None)
    _connection_flags(p)
    p.set_defaults(func=cmd_record)


def _add_evaluation_commands(sub: Any) -> None:
    """evaluate: the risk model against outcomes, one subcommand per data set."""
    p = sub.add_parser(
        "evaluate", help="sensitivity, lead time and false alert-days of the behaviour-based risk"
    )
    ev = p.add_subparsers(dest="evaluate_command", required=True)
    w = ev.add_parser(
        "welltory", help="Welltory hrv-covid19 participants with symptom-onset dates (docs/risk.md)"
    )
    w.add_argument(
        "--data",
        default="tests/data/welltory",
        help="folder with participants.csv, wearables.csv, sleep.csv and hrv_measurements.csv"
        " (default: %(default)s, the copy in this repository; ../shared/data/welltory is the"
        " original)",
    )
    w.add_argument("--json", action="store_true", help="print the report as JSON")
    w.set_defaults(func=cmd_evaluate_welltory)
    s = ev.add_parser(
        "simulated",
        help="the simulator's labelled multi-day cohort: half catch an infection, or with"
        " --scenario home_hr_rise their resting heart rate alone rises (docs/risk.md)",
    )
    s.add_argument(
        "--scenario",
        choices=("home_infection", "home_hr_rise"),
        default="home_infection",
        help="what happens to the half who fall ill (default %(default)s)",
    )
    s.add_argument("--patients", type=int, default=20, help="cohort size (default %(default)s)")
    s.add_argument("--days", type=int, default=21, help="days simulated (default %(default)s)")
    s.add_argument("--seed", type=int, default=1, help="the cohort's seed (default %(default)s)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(func=cmd_evaluate_simulated)


def _add_report_command(sub: Any) -> None:
    """report: how alerting performed, per ward (docs/report.md)."""
    p = sub.add_parser(
        "report",
        help="alerts per patient-day, time to acknowledge, escalations and notifications per ward",
    )
    p.add_argument("--since", type=_when, help="start of the period (default: 7 days earlier)")
    p.add_argument("--until", type=_when, help="end of the period, exclusive (default: now)")
    p.add_argument("--ward", help="only this ward")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _connection_flags(p)
    p.set_defaults(func=cmd_report)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"wardwatch: bad setting: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            "wardwatch: cannot reach the database (WARDWATCH_DATABASE_URL / --database-url): "
            + reason,
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
