# pgdeploy's read of one pglift postgres_exporter service (pglift has no command that shows
# one), run with pglift's own Python so the paths, the template and the decisions are pglift's:
# argv[1] is the service's name; stdin holds {"dsn", "password", "port"} as the task gives
# them. Prints one JSON line and never a password: only whether the one in the file is the
# one given.
import json
import sys

try:
    import psycopg.conninfo
    from pglift import exceptions
    from pglift.models import PostgreSQLInstance
    from pglift.prometheus import impl
    from pglift.settings import SiteSettings
    from pglift.system import cmd
    from pglift.types import Status
except ImportError as e:
    print(json.dumps({"error": f"pglift cannot be imported: {e}"}))
    sys.exit(0)


def conninfo(dsn, **kw):
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn, **kw)
    except Exception:
        return None
    info.pop("password", None)
    return info


name = sys.argv[1]
want = json.load(sys.stdin)
settings = SiteSettings()
out = {"enabled": settings.prometheus is not None}
if settings.prometheus is not None:
    p = settings.prometheus
    try:
        PostgreSQLInstance.from_qualname(name, settings)
        out["local_instance"] = True
    except (ValueError, exceptions.InstanceNotFound):
        out["local_instance"] = False
    path = impl._configpath(name, p)
    out["configpath"] = str(path)
    out["want_dsn"] = conninfo(want["dsn"])
    out["exists"] = path.exists()
    if path.exists() and out["want_dsn"] is not None:
        text = path.read_text()
        try:
            config = impl._config(path)
            current = psycopg.conninfo.conninfo_to_dict(config["DATA_SOURCE_NAME"])
            out["port"] = impl.port(config)
        except Exception as e:
            out["unreadable"] = type(e).__name__
            current = {}
        password = current.pop("password", None)
        out["dsn"] = current
        out["has_password"] = password is not None
        out["same_password"] = password == want.get("password")
        uri = impl.make_uri(
            **psycopg.conninfo.conninfo_to_dict(want["dsn"], password=want.get("password"))
        )
        wanted = impl.template("postgres_exporter.conf").format(uri=uri, port=want["port"])
        out["same_config"] = wanted == text
        out["running"] = cmd.status_program(impl._pidfile(name, p)) == Status.running
print(json.dumps(out))
