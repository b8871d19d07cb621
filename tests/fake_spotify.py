"""A fake Spotify Web API on 127.0.0.1 for offline tests, the benchmark and rehearsals by hand.

Endpoints: POST /api/token, GET /v1/audio-features?ids=, GET /v1/audio-analysis/{id},
GET /v1/search. Features are derived from a hash of the id, so every run agrees. Faults are
scripted per path prefix (`fake.script("/v1/audio-features", Fault(status=429, retry_after=1))`)
and consumed one per matching request; `fault_cycle` + `fault_every` inject them forever.

Run it by hand to rehearse a large extraction offline:

    python tests/fake_spotify.py --port 8765 --faults 429,500,timeout --fault-every 10 \\
        --latency-ms 50 --client-id X --client-secret Y
    SPOTIPY_CLIENT_ID=X SPOTIPY_CLIENT_SECRET=Y geomusic features --source spotify \\
        --api-base http://127.0.0.1:8765 --input tracks.csv --out /tmp/features --timeout 2

`--faults` names faults in order: an HTTP status (429 answers with Retry-After: --retry-after),
`timeout` (the answer comes after --timeout-delay-s seconds) or `badjson` (a truncated body).
Without `--fault-every` each fault hits one API request, in order, starting with the first;
with `--fault-every N` every Nth API request gets the next fault of the list, cycling.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CLIENT_ID = "fake-client-id-4f1c2d"
CLIENT_SECRET = "fake-client-secret-9a8b7c6d5e"
TOKEN = "fake-access-token-0123"
MAX_IDS = 100


@dataclass
class Fault:
    """One scripted misbehaviour: a status (with Retry-After), a delay, a raw body, or null entries."""

    status: int | None = None
    retry_after: float | None = None
    delay_s: float = 0.0
    body: bytes | None = None


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    at: float


def synthetic_id(n: int) -> str:
    """A valid-looking 22-character base62 Spotify id for integer n."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digest = int.from_bytes(hashlib.sha256(f"track-{n}".encode()).digest()[:16], "big")
    chars = []
    for _ in range(22):
        digest, rem = divmod(digest, 62)
        chars.append(alphabet[rem])
    return "".join(chars)


def _unit(sp_id: str, salt: str) -> float:
    return int.from_bytes(hashlib.sha256(f"{salt}:{sp_id}".encode()).digest()[:8], "big") / 2 ** 64


def audio_features(sp_id: str) -> dict:
    """Deterministic audio features for an id, in the Web API's shape."""
    u = lambda s: _unit(sp_id, s)  # noqa: E731
    return {
        "id": sp_id, "type": "audio_features", "uri": f"spotify:track:{sp_id}",
        "danceability": round(u("d"), 3), "energy": round(u("e"), 3), "key": int(u("k") * 12),
        "loudness": round(-30 * u("l"), 3), "mode": int(u("m") > 0.5), "speechiness": round(u("s"), 4),
        "acousticness": round(u("a"), 4), "instrumentalness": round(u("i"), 4), "liveness": round(u("v"), 4),
        "valence": round(u("va"), 3), "tempo": round(60 + 140 * u("t"), 3),
        "duration_ms": int(120_000 + 240_000 * u("du")), "time_signature": 3 + int(u("ts") * 3),
    }


def audio_analysis(sp_id: str) -> dict:
    """Deterministic segments (5 to 24) for an id."""
    n = 5 + int(_unit(sp_id, "n") * 20)
    segments = [{
        "start": i * 0.25, "duration": 0.25, "loudness_start": -20 + _unit(sp_id, f"ls{i}"),
        "loudness_max": -10 + _unit(sp_id, f"lm{i}"),
        "pitches": [round(_unit(sp_id, f"p{i}.{j}"), 3) for j in range(12)],
        "timbre": [round(100 * _unit(sp_id, f"t{i}.{j}") - 50, 3) for j in range(12)],
    } for i in range(n)]
    return {"meta": {"status_code": 0}, "track": {"duration": n * 0.25}, "segments": segments}


@dataclass
class FakeSpotify:
    """Start with `with FakeSpotify() as fake:`; `fake.url` is the API root for `SpotifyParams.api_base`."""

    latency_s: float = 0.0
    null_ids: set[str] = field(default_factory=set)
    forbidden: tuple[str, ...] = ()  # path prefixes that always answer 403
    catalogue: dict[str, tuple[str, str]] = field(default_factory=dict)  # sp_id → (artist, title)
    calls: list[Call] = field(default_factory=list)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    port: int = 0  # 0: any free port
    fault_cycle: tuple[Fault, ...] = ()  # with fault_every > 0: every Nth /v1/ request gets the next one
    fault_every: int = 0

    def __post_init__(self) -> None:
        self._faults: list[tuple[str, Fault]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._api_requests = 0

    # -- control
    def script(self, prefix: str, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend((prefix, f) for f in faults)

    def calls_to(self, prefix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.startswith(prefix)]

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeSpotify":
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeSpotify":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for i, (prefix, fault) in enumerate(self._faults):
                if path.startswith(prefix):
                    return self._faults.pop(i)[1]
            if self.fault_every and self.fault_cycle and path.startswith("/v1/"):
                self._api_requests += 1
                if self._api_requests % self.fault_every == 0:
                    turn = self._api_requests // self.fault_every - 1
                    return self.fault_cycle[turn % len(self.fault_cycle)]
        return None

    def _record(self, method: str, path: str, query: dict, status: int) -> None:
        with self._lock:
            self.calls.append(Call(method, path, query, status, time.monotonic()))

    def search(self, q: str, limit: int) -> dict:
        words = set(re.findall(r"[a-z0-9]+", q.lower())) - {"track", "artist"}
        scored = sorted(((len(words & set(re.findall(r"[a-z0-9]+", f"{a} {t}".lower()))), sp_id)
                         for sp_id, (a, t) in self.catalogue.items()), reverse=True)
        items = [{"id": sp_id, "name": self.catalogue[sp_id][1], "artists": [{"name": self.catalogue[sp_id][0]}]}
                 for hits, sp_id in scored[:limit] if hits]
        return {"tracks": {"items": items, "total": len(items)}}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client killed mid-request (the SIGKILL test) is expected, not an error


class _Handler(BaseHTTPRequestHandler):
    owner: FakeSpotify
    protocol_version = "HTTP/1.1"  # keep-alive, as with the real API
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, payload: object = None, raw: bytes | None = None,
              headers: dict[str, str] | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        fake, path = self.owner, urlparse(self.path).path
        if fake.latency_s:
            time.sleep(fake.latency_s)
        expected = "Basic " + base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
        if path != "/api/token":
            status, payload = 404, {"error": "not found"}
        elif self.headers.get("Authorization") != expected:
            status, payload = 400, {"error": "invalid_client", "error_description": "Invalid client"}
        else:
            status, payload = 200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}
        fake._record("POST", path, {}, status)
        self._send(status, payload)

    def do_GET(self) -> None:  # noqa: N802
        fake, parsed = self.owner, urlparse(self.path)
        path, query = parsed.path.rstrip("/"), parse_qs(parsed.query)
        if fake.latency_s:
            time.sleep(fake.latency_s)
        fault = fake._take_fault(path)
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(path, query, 401, {"error": {"status": 401, "message": "No token provided"}})
        if any(path.startswith(p) for p in fake.forbidden):
            return self._reply(path, query, 403, {"error": {"status": 403, "message": "Forbidden"}})
        if fault and fault.status:
            headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else None
            return self._reply(path, query, fault.status, {"error": {"status": fault.status}}, headers=headers)
        if fault and fault.body is not None:
            return self._reply(path, query, 200, raw=fault.body)
        if path == "/v1/audio-features":
            ids = [i for i in ",".join(query.get("ids", [""])).split(",") if i]
            if not ids or len(ids) > MAX_IDS:
                return self._reply(path, query, 400, {"error": {"status": 400, "message": "invalid ids"}})
            items = [None if i in fake.null_ids else audio_features(i) for i in ids]
            return self._reply(path, query, 200, {"audio_features": items})
        if path.startswith("/v1/audio-analysis/"):
            sp_id = path.rsplit("/", 1)[1]
            if sp_id in fake.null_ids:
                return self._reply(path, query, 404, {"error": {"status": 404, "message": "analysis not found"}})
            return self._reply(path, query, 200, audio_analysis(sp_id))
        if path == "/v1/search":
            limit = int(query.get("limit", ["10"])[0])
            return self._reply(path, query, 200, fake.search(query.get("q", [""])[0], limit))
        return self._reply(path, query, 404, {"error": {"status": 404, "message": "Service not found"}})

    def _reply(self, path: str, query: dict, status: int, payload: object = None, raw: bytes | None = None,
               headers: dict[str, str] | None = None) -> None:
        self.owner._record("GET", path, query, status)
        self._send(status, payload, raw=raw, headers=headers)


def parse_faults(text: str, retry_after: float = 1.0, timeout_delay_s: float = 15.0) -> list[Fault]:
    """'429,500,timeout,badjson' → Faults (HTTP status, a late answer, a truncated JSON body)."""
    faults = []
    for name in (part.strip().lower() for part in text.split(",") if part.strip()):
        if name == "timeout":
            faults.append(Fault(delay_s=timeout_delay_s))
        elif name == "badjson":
            faults.append(Fault(body=b'{"audio_features": [tru'))
        elif name.isdigit() and 400 <= int(name) <= 599:
            faults.append(Fault(status=int(name), retry_after=retry_after if name == "429" else None))
        else:
            raise argparse.ArgumentTypeError(f"unknown fault {name!r}: use an HTTP status (429, 500, 503 ...), "
                                             "'timeout' or 'badjson'")
    return faults


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; prints the API root (for --api-base) on the first line."""
    parser = argparse.ArgumentParser(prog="python tests/fake_spotify.py", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--faults", default="", help="comma-separated faults, e.g. 429,500,timeout,badjson")
    parser.add_argument("--fault-every", type=int, default=0,
                        help="inject the next fault on every Nth API request, cycling (default: each fault once)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds of a 429")
    parser.add_argument("--timeout-delay-s", type=float, default=15.0, help="delay of a 'timeout' fault")
    parser.add_argument("--client-id", default=CLIENT_ID, help="the accepted SPOTIPY_CLIENT_ID")
    parser.add_argument("--client-secret", default=CLIENT_SECRET, help="the accepted SPOTIPY_CLIENT_SECRET")
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args.faults, args.retry_after, args.timeout_delay_s)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    server = FakeSpotify(latency_s=args.latency_ms / 1000, client_id=args.client_id,
                         client_secret=args.client_secret, port=args.port,
                         fault_cycle=tuple(faults), fault_every=args.fault_every)
    if not args.fault_every:
        server.script("/v1/", *faults)
    with server:
        print(server.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
