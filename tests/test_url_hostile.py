"""Hostile registry URLs: split as SQLAlchemy splits them, and no password
(nor any piece of it) in a message, a repr or a str, on every backend.

Every URL of the corpus goes through SQLAlchemy's make_url() and through our
parser, observed from the outside: the masked URL of Store(...).url, the
Store's repr, and the exceptions from Store(...) and from a first connection
attempt (to a closed port, or to the local MariaDB socket, which refuses the
user). Where SQLAlchemy accepts what we refuse, the URL must be one of the
cases url.c refuses on purpose (see its header comment); ``stricter`` below
says which.
"""

import itertools
import re
import threading
import time
from urllib.parse import quote, unquote, unquote_to_bytes

import pytest
from sqlalchemy.engine.url import make_url

import objects as o
from conftest import BACKENDS
from feast_sqlreg import errors
from feast_sqlreg._sqlregistry import Store
from feast_sqlreg.registry import ENTITY

SCHEMES = {
    "sqlite": ["sqlite"],
    "postgresql": ["postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgres"],
    "mysql": ["mysql", "mysql+pymysql", "mariadb+mariadbconnector"],
}

# Letters no driver or server message contains in a row (Q, J, X, Z, V in
# upper case; Cyrillic, CJK), around the characters that break URL parsers.
# A leak is any 3-character piece with one of those letters in it (plain
# lower-case words such as "host" or "sslmode" are in messages anyway).
PASSWORDS = [
    "QJ?XZ",
    "QJ/XZ",
    "QJ@XZ",
    "QJ:XZ",
    "QJ#XZ",
    "QJ%XZ",
    "QJ%2FXZ",
    "QJ XZ V",
    "QJ?XZ/VQ@JX:ZV#QZ",
    "QJX/ZV?QJ@",
    "@QJX",
    "QJX@",
    ":QJX:",
    "QJ&sslmode=disableXZ",
    "QJ?host=XZevil",
    "QJ%zzXZ",
    "QJ%XZ%",
    "QJ%00XZ",
    "QJ%ffXZ",
    "QJ[::1]XZ",
    "QJ'\"XZ\\V",
    "QJ\tXZ",
    "ЖЩЮЯЖЩЮ",
    "密碼機密鑰匙",
    "QJ😀XZ😀",
    "QJ+XZ+V",
    "QJX" * 700,  # 2100 characters
    ("QJ?XZ/V@" * 200)[:1500],
]

USERS = ["feastuser", "fe%40ast", "fe?ast"]
HOSTS = ["127.0.0.1:1", "[::1]:1", "localhost:1", "localhost", ""]
TAILS = ["/regdb?connect_timeout=2", "/?connect_timeout=2", "/re%20g?connect_timeout=2&sslmode=disable", ""]
QUERY_SECRETS = ["password=QJXZVQJ", "sslpassword=QJ%26XZ"]


def _corpus(scheme):
    """(url, secrets) pairs: what the user meant as secret in each URL."""
    out = []
    for pw, user in itertools.product(PASSWORDS, USERS):
        for enc in (pw, quote(pw, safe="")):
            for host, tail in itertools.product(HOSTS, TAILS):
                if len(pw) > 100 and (host, tail) != (HOSTS[0], TAILS[0]):
                    continue  # the long ones once per user and encoding
                out.append((f"{scheme}://{user}:{enc}@{host}{tail}", [pw, enc]))
    # No '@' at all: the "password" is a port, or junk. ("u:QJ@XZ" is a
    # proper URL with host XZ: no parser can tell it from a broken password.)
    for pw in [p for p in PASSWORDS[:8] if "@" not in p]:
        out.append((f"{scheme}://feastuser:{pw}", [pw]))
        out.append((f"{scheme}://feastuser:{pw}/regdb", [pw]))
    for q in QUERY_SECRETS:
        value = q.split("=", 1)[1]
        out.append((f"{scheme}://feastuser@127.0.0.1:1/regdb?connect_timeout=2&{q}", [value, unquote(value)]))
        out.append((f"{scheme}://feastuser:QJVZX@127.0.0.1:1/regdb?{q}&connect_timeout=2", [value, "QJVZX"]))
    many = "&".join(f"k{i}=QJV{i}X" for i in range(33))
    out.append((f"{scheme}://feastuser:QJVZX@127.0.0.1:1/regdb?{many}", ["QJVZX", "QJV1X"]))
    out.append((f"{scheme}://feastuser:QJVZX@127.0.0.1:1/regdb?a=1\nb=QJXZV", ["QJVZX", "QJXZV"]))
    out.append((f"{scheme}://feastuser:QJVZX@[::1]x/regdb", ["QJVZX"]))
    out.append((f"{scheme}://feastuser:QJVZX@[::1/regdb", ["QJVZX"]))
    out.append((f"{scheme}://feastuser:QJVZX@h%zz/regdb", ["QJVZX"]))
    return out


def corpus_size():
    return sum(len(_corpus(s)) for b in BACKENDS for s in SCHEMES[b])


# SQLAlchemy's splitting, used here only to say *why* we refuse a URL.
_SA = re.compile(
    r"(?P<name>[\w\+]+)://(?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?"
    r"(?:(?:\[(?P<ipv6host>[^/\?]+)\]|(?P<ipv4host>[^/:\?]+))?(?::(?P<port>[^/\?]*))?)?"
    r"(?:/(?P<database>[^\?]*))?(?:\?(?P<query>.*))?"
)


def _bad_text(raw, plus=False):
    """True when url.c refuses this percent-encoded text."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", raw) or re.search(r"%00", raw):
        return True
    try:
        unquote_to_bytes(raw.replace("+", " ") if plus else raw).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def stricter(url):
    """Why url.c refuses a URL SQLAlchemy may accept, or None."""
    m = _SA.match(url)
    if not m or m.group("name").startswith("+"):
        return "not a URL"
    g = m.groupdict()
    if m.end() < len(url):
        return "text SQLAlchemy ignores"
    if g["ipv4host"] and g["ipv4host"].startswith("["):
        return "unterminated [IPv6]"
    if g["password"] is not None and "@" in url[m.end("password") + 1 :]:
        return "raw '@' after the password"
    for part in ("username", "password", "ipv4host", "ipv6host", "database"):
        if g[part] is not None and _bad_text(g[part]):
            return f"bad escape in {part}"
    if g["port"] is not None and not (re.fullmatch(r"[0-9]{1,5}", g["port"]) and 0 < int(g["port"]) < 65536):
        return "port"
    if g["query"] is not None:
        if "\n" in g["query"]:
            return "line break"
        pairs = [p.split("=", 1) for p in g["query"].split("&") if "=" in p and p.split("=", 1)[1]]
        if len(pairs) > 32:
            return "more than 32 options"
        if any(_bad_text(k, True) or _bad_text(v, True) for k, v in pairs):
            return "bad escape in the query"
    if g["name"].lower() == "sqlite" and (g["username"] is not None or g["ipv4host"] or g["ipv6host"] or g["port"]):
        return "sqlite with a host"
    return None


def _messages(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    out = []
    for e in seen:
        out += [str(e), repr(e)] + [str(a) for a in e.args]
    return out


def _marker(c):
    return c in "QJXZV" or (c.isalpha() and not c.isascii())


def _pieces(secret):
    """The secret and each of its 3-character pieces holding a letter."""
    pieces = {secret} if len(secret) >= 3 else set()
    pieces |= {secret[i : i + 3] for i in range(len(secret) - 2) if any(_marker(c) for c in secret[i : i + 3])}
    return pieces


def _assert_no_leak(url, secrets, texts):
    for text in texts:
        for secret in secrets:
            for piece in _pieces(secret):
                assert piece not in text, f"{piece!r} of a secret of {url!r} shown in {text!r}"


def _same_parse(url, sa, masked):
    """Our masked URL read back by make_url says what SQLAlchemy read."""
    back = make_url(masked)
    scheme = sa.drivername.split("+", 1)[0].lower()
    assert back.drivername.lower() == sa.drivername.lower(), url
    assert back.username == sa.username, url
    assert (back.password is not None) == (sa.password is not None), url
    if back.password is not None:
        assert back.password == "***", url
    assert unquote(back.host or "") == unquote(sa.host or ""), url
    assert back.port == sa.port, url
    if scheme == "sqlite":
        assert (back.database or ":memory:") == (sa.database or ":memory:"), url
    else:
        assert (back.database or None) == (sa.database or None), url


@pytest.mark.parametrize("scheme", [s for b in BACKENDS for s in SCHEMES[b]])
def test_hostile_urls(scheme, tmp_path):
    tried = 0
    for url, secrets in _corpus(scheme):
        if scheme == "sqlite":
            # Accepted sqlite URLs name files: keep them in tmp_path.
            url = url.replace("/regdb", f"/{tmp_path}/regdb")
        tried += 1
        try:
            sa = make_url(url)
            sa_error = None
        except Exception as e:  # noqa: BLE001 - ArgumentError, ValueError
            sa, sa_error = None, e
        why = stricter(url)
        try:
            store = Store(url, pool_timeout=5)
        except errors.DatabaseError as e:
            _assert_no_leak(url, secrets, _messages(e))
            assert isinstance(e, errors.ConfigurationError), (url, e)
            assert sa_error is not None or why, f"we refuse what SQLAlchemy accepts: {url!r}: {e}"
            continue
        assert sa_error is None and not why, f"accepted {url!r} ({why or sa_error})"
        _assert_no_leak(url, secrets, [store.url, repr(store), str(store)])
        _same_parse(url, sa, store.url)
        if scheme != "sqlite":
            try:
                store.missing_tables()
            except errors.DatabaseError as e:
                _assert_no_leak(url, secrets, _messages(e))
        del store
    assert tried == len(_corpus(scheme))


def test_issue_example_is_split_at_the_at_sign():
    """The hardening issue's URL: the password's tail was an 'option'."""
    for url in ("postgresql://postgres:ab?cd@127.0.0.1:1/db", "mysql://root:ab?cd@127.0.0.1:1/db"):
        try:
            store = Store(url)
        except errors.ConfigurationError as e:  # backend not built
            assert "cd@" not in str(e)
            continue
        assert store.url == url.replace("ab?cd", "***")
        with pytest.raises(errors.DatabaseError) as info:
            store.missing_tables()
        assert "ab?cd" not in str(info.value) and "cd@" not in str(info.value)


@pytest.mark.parametrize(
    "url, words",
    [
        ("postgresql://u:pw@h%zz/db", "bad percent-escape in the host of the registry URL"),
        ("mysql://u:pw@[::1%zz]/db", "bad percent-escape in the host of the registry URL"),
        ("postgresql://u:QJX@h/db?k=QJ%zzX", "bad percent-escape in the value of query option 'k'"),
        ("postgresql://u:QJX@h/db?k%zz=v", "bad percent-escape in the query key 'k%zz'"),
        ("postgresql://u:QJX@h/db?" + "&".join(f"k{i}=v" for i in range(33)), "more than 32 query options"),
        ("postgresql://u:QJ@X@h/db", "unescaped '@'"),
    ],
)
def test_parts_named(url, words):
    with pytest.raises(errors.ConfigurationError) as info:
        Store(url)
    assert words in str(info.value)
    assert "QJ" not in str(info.value)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "infinity", "-1", "-0.5"])
def test_sqlite_timeout_refused(tmp_path, value):
    store = Store(f"sqlite:///{tmp_path}/r.db?timeout={value}")  # connects lazily
    with pytest.raises(errors.ConfigurationError, match="timeout"):
        store.create_schema()


@pytest.mark.skipif("sqlite" not in BACKENDS, reason="no sqlite backend")
@pytest.mark.parametrize("value", ["2147483.648", "1e10", "1e999"])
def test_sqlite_huge_timeout_still_waits(tmp_path, value):
    """Another thread holds the database's write lock for a second: a Store
    with a huge timeout waits for it instead of failing 'database is
    locked' (the old int conversion overflowed and turned waiting off)."""
    import sqlite3

    path = tmp_path / "r.db"
    Store(f"sqlite:///{path}").create_schema()
    store = Store(f"sqlite:///{path}?timeout={value}")
    store.missing_tables()  # connected before the lock is taken
    locked = threading.Event()

    def hold():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(1.0)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    start = time.monotonic()
    try:
        store.apply(ENTITY, "p", "driver", o.entity().to_proto().SerializeToString(), 1)
    finally:
        holder.join()
    assert time.monotonic() - start >= 0.8
    assert store.get(ENTITY, "p", "driver")
