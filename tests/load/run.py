#!/usr/bin/env python3
"""Load benchmark of fiaas-deploy-daemon against the real test cluster (tests/cluster).

For each N in --sizes (default 100 and 1000), each case of --cases in a fresh namespace:

  at-once       N Applications created at once while the daemon runs: time until every app has
                its Deployment and an ApplicationStatus >= RUNNING ("applied"), the daemon's API
                requests (exact, from its own flow schema; see README.md), RSS, CPU, the cost of
                one Deployment event, and (--success-sizes) the SUCCESS phase: this script plays
                the kubelet and measures Deployment available -> status SUCCESS;
  restart       after at-once and its SUCCESS phase: a new daemon over N apps all SUCCESS, time
                to ready and its requests meanwhile;
  pre-existing  N Applications created with no daemon; the clock starts with the daemon;
  replicas      --replicas daemons with --shards, as at-once, per-replica RSS and requests.

Before the first N, between two N and after the last one, it measures the server-side-apply
ceiling (how fast it applies the daemon's objects itself) as the yardstick of the daemon's apply
rate. The report ends with issue 12's goals, each MET or MISSED.

Standard library only, plus kubectl to read the kubeconfig. Run by hand; see README.md.
"""

import argparse
import base64
import collections
import concurrent.futures
import datetime
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
API_GROUP = "fiaas.schibsted.io/v1"
DAEMON_FLAGS = [
    "--enable-crd-support",
    "--use-networkingv1-ingress",
    "--use-apiextensionsv1-crd",
    "--ingress-suffix", "svc.test.example.com",
]
SA_NAME = "fiaas-deploy-daemon"
# The daemon's shard leases (`fiaas-daemon/src/shards.rs`), under the default lease name.
SHARD_LEASE_PREFIX = "fiaas-deploy-daemon-shard-"
# Resource names of the kinds `fiaas render` gives, for their server-side-apply paths.
PLURALS = {"HorizontalPodAutoscaler": "horizontalpodautoscalers",
           "PodDisruptionBudget": "poddisruptionbudgets", "Ingress": "ingresses"}
CASES = ("at-once", "pre-existing", "restart", "replicas")
# Results that mean "the deploy got at least as far as RUNNING".
PAST_RUNNING = {"RUNNING", "SUCCESS", "FAILED"}
# time.monotonic() + WALL = time.time(), to compare our timestamps with the daemon's log.
WALL = time.time() - time.monotonic()


def log(msg):
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, -(-p * len(s) // 100) - 1))]


def summary(values):
    if not values:
        return None
    return {"n": len(values), "min": min(values), "median": statistics.median(values),
            "p90": pct(values, 90), "max": max(values)}


def fmt_summary(s, unit="s"):
    if not s:
        return "n/a"
    return (f"median {s['median']:.3f}{unit}, p90 {s['p90']:.3f}{unit}, "
            f"max {s['max']:.3f}{unit} (min {s['min']:.3f}{unit}, n={s['n']})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ------------------------------------------------------------------------------------------------
# A tiny Kubernetes client: one keep-alive HTTPS connection per thread, bearer-token auth, and a
# count of every request it makes keyed like apiserver_request_total, so they can be subtracted.
# ------------------------------------------------------------------------------------------------

class Kube:
    def __init__(self):
        raw = subprocess.run(["kubectl", "config", "view", "--raw", "--minify", "-o", "json"],
                             check=True, capture_output=True, text=True).stdout
        cfg = json.loads(raw)
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        self.server = cluster["server"]
        url = urllib.parse.urlparse(self.server)
        self.host, self.port = url.hostname, url.port or 443
        if "token" not in user:
            sys.exit("this benchmark needs a bearer-token kubeconfig (the test cluster's default)")
        self.token = user["token"]
        if "certificate-authority-data" in cluster:
            f = tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False)
            f.write(base64.b64decode(cluster["certificate-authority-data"]))
            f.close()
            self.cafile = f.name
        else:
            self.cafile = cluster["certificate-authority"]
        self.ctx = ssl.create_default_context(cafile=self.cafile)
        self.local = threading.local()
        self.lock = threading.Lock()
        # (VERB, resource, subresource) -> count, as the apiserver labels our requests.
        self.mine = collections.Counter()

    def _conn(self, fresh=False):
        c = getattr(self.local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            self.local.conn = c
        return c

    def _count(self, verb, resource, subresource=""):
        with self.lock:
            self.mine[(verb, resource, subresource)] += 1

    def request(self, method, path, body=None, content_type="application/json",
                verb=None, resource="", subresource="", ok=(200, 201, 202)):
        """One request; returns (status, parsed JSON or None). Retries once on a dropped
        keep-alive connection. `verb`/`resource`/`subresource` label it for self-accounting."""
        self._count(verb or method, resource, subresource)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            conn = self._conn(fresh=attempt > 0)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                if attempt:
                    raise
        doc = json.loads(raw) if raw and raw[:1] == b"{" else None
        if ok and resp.status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {raw[:300]!r}")
        return resp.status, doc

    def watch(self, path, resource, resource_version, on_event):
        """Watch in a thread; returns a stop function. Events go to on_event(type, obj,
        monotonic time). Re-opened from the last resourceVersion if it ends."""
        state = {"stop": False, "conn": None, "rv": resource_version}

        def run():
            while not state["stop"]:
                conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx)
                state["conn"] = conn
                sep = "&" if "?" in path else "?"
                q = (f"{path}{sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=3600"
                     f"&resourceVersion={state['rv']}")
                try:
                    self._count("WATCH", resource)
                    conn.request("GET", q, headers={"Authorization": f"Bearer {self.token}"})
                    resp = conn.getresponse()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
                    while not state["stop"]:
                        line = resp.readline()
                        if not line:
                            break
                        now = time.monotonic()
                        ev = json.loads(line)
                        obj = ev.get("object", {})
                        if ev.get("type") == "ERROR":
                            raise RuntimeError(obj.get("message"))
                        rv = obj.get("metadata", {}).get("resourceVersion")
                        if rv:
                            state["rv"] = rv
                        if ev.get("type") != "BOOKMARK":
                            on_event(ev["type"], obj, now)
                except Exception as e:  # noqa: BLE001 - reported, then re-watched
                    if not state["stop"]:
                        log(f"watch {path} interrupted ({e}); re-watching")
                        time.sleep(0.5)
                finally:
                    conn.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()

        def stop():
            state["stop"] = True
            conn = state["conn"]
            if conn is not None and conn.sock is not None:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            t.join(timeout=5)
        return stop

    # --- apiserver metrics -----------------------------------------------------------------

    LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

    def scrape(self):
        """apiserver_request_total as {(verb, group, resource, subresource, code, contentType):
        n}, apiserver_flowcontrol_dispatched_requests_total as {flow_schema: n} and the
        apiserver_request_duration_seconds sums and counts as {(verb, resource or "" for all,
        "sum"|"count"): value}."""
        self._count("GET", "")
        conn = self._conn()
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {self.token}"})
        text = conn.getresponse().read().decode()
        requests, flows = collections.Counter(), collections.Counter()
        durations = collections.Counter()
        for line in text.splitlines():
            if line.startswith(("apiserver_request_duration_seconds_sum{",
                                "apiserver_request_duration_seconds_count{")):
                labels_part, value = line.rsplit(" ", 1)
                lb = dict(self.LABEL_RE.findall(labels_part))
                kind = "sum" if line.startswith("apiserver_request_duration_seconds_sum") else "count"
                durations[(lb.get("verb", ""), "", kind)] += float(value)
                durations[(lb.get("verb", ""), lb.get("resource", ""), kind)] += float(value)
                continue
            if line.startswith("apiserver_request_total{"):
                labels_part, value = line.rsplit(" ", 1)
                lb = dict(self.LABEL_RE.findall(labels_part))
                requests[(lb.get("verb", ""), lb.get("group", ""), lb.get("resource", ""),
                          lb.get("subresource", ""), lb.get("code", ""),
                          lb.get("contentType", ""))] += float(value)
            elif line.startswith("apiserver_flowcontrol_dispatched_requests_total{"):
                labels_part, value = line.rsplit(" ", 1)
                lb = dict(self.LABEL_RE.findall(labels_part))
                flows[lb.get("flow_schema", lb.get("flowSchema", ""))] += float(value)
        return requests, flows, durations


# ------------------------------------------------------------------------------------------------
# The daemon's own identity: a ServiceAccount (cluster-admin) whose requests a dedicated
# FlowSchema (on the exempt priority level: no queuing) counts, so that the apiserver tells us
# exactly how many requests the daemon made, whatever else uses the shared cluster.
# ------------------------------------------------------------------------------------------------

def daemon_identity(kube, ns, outdir, sa=SA_NAME):
    """A ServiceAccount `sa` in `ns` with its own flow schema. Returns (kubeconfig path, flow
    schema name, cleanup function)."""
    name = f"fiaas-load-bench-{ns}" + ("" if sa == SA_NAME else f"-{sa}")
    kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                 {"metadata": {"name": sa}}, resource="serviceaccounts")
    cleanups = []

    path = os.path.join(outdir, f"kubeconfig-{ns}-{sa}")

    def cleanup():
        if os.path.exists(path):
            os.remove(path)  # holds the ServiceAccount's token
        for url, resource in reversed(cleanups):
            try:
                kube.request("DELETE", url, resource=resource, ok=(200, 202, 404))
            except Exception as e:  # noqa: BLE001
                log(f"could not delete {url}: {e}")

    try:
        kube.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        }, resource="clusterrolebindings")
        cleanups.append((f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}",
                         "clusterrolebindings"))
        kube.request("POST", "/apis/flowcontrol.apiserver.k8s.io/v1beta1/flowschemas", {
            "metadata": {"name": name},
            "spec": {
                "matchingPrecedence": 2,
                "priorityLevelConfiguration": {"name": "exempt"},
                "rules": [{
                    "subjects": [{"kind": "ServiceAccount",
                                  "serviceAccount": {"name": sa, "namespace": ns}}],
                    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                       "clusterScope": True, "namespaces": ["*"]}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }],
            },
        }, resource="flowschemas")
        cleanups.append((f"/apis/flowcontrol.apiserver.k8s.io/v1beta1/flowschemas/{name}",
                         "flowschemas"))
        # The token controller (in kube-controller-manager) adds the token Secret.
        token = None
        for _ in range(100):
            _, obj = kube.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}",
                                  resource="serviceaccounts")
            for ref in obj.get("secrets") or []:
                _, sec = kube.request("GET", f"/api/v1/namespaces/{ns}/secrets/{ref['name']}",
                                      resource="secrets")
                if (sec.get("data") or {}).get("token"):
                    token = base64.b64decode(sec["data"]["token"]).decode()
            if token:
                break
            time.sleep(0.2)
        if not token:
            raise RuntimeError(f"no token Secret for ServiceAccount {ns}/{sa}")
        with open(path, "w") as f:
            json.dump({
                "apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": kube.server,
                                                       "certificate-authority": kube.cafile}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u",
                                                       "namespace": ns}}],
                "current-context": "c",
            }, f)
        os.chmod(path, 0o600)
        return path, name, cleanup
    except BaseException:
        cleanup()
        raise


# ------------------------------------------------------------------------------------------------
# Processes: the daemon, and the cluster's components (for CPU accounting).
# ------------------------------------------------------------------------------------------------

def proc_status(pid):
    """VmRSS / VmHWM in MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) / 1024.0
    return out


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cluster_pids():
    pids = {}
    d = os.path.join(REPO, "target", "test-cluster")
    for c in ("etcd", "apiserver", "kcm"):
        try:
            with open(os.path.join(d, f"{c}.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            pids[c] = pid
        except (OSError, ValueError):
            pass
    return pids


class Daemon:
    def __init__(self, binary, namespace, max_concurrent, logfile, debug, kubeconfig,
                 extra=(), identity=None):
        self.port = free_port()
        env = dict(os.environ, NAMESPACE=namespace)
        if kubeconfig:
            env["KUBECONFIG"] = kubeconfig
        if identity:  # the shard leases' holder name
            env["HOSTNAME"] = identity
        self.identity = identity
        args = [binary, *DAEMON_FLAGS, "--port", str(self.port),
                "--max-concurrent-deploys", str(max_concurrent), *extra]
        if debug:
            args.append("--debug")
        self.logfile = logfile
        self.log = open(logfile, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid

    def healthy(self):
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def time_healthy(self, limit=120):
        """Polls /healthz every 20 ms in a thread; `healthy_at` becomes the monotonic time of
        the first 200."""
        self.healthy_at = None

        def poll():
            while self.proc.poll() is None and time.monotonic() < self.started + limit:
                if self.healthy():
                    self.healthy_at = time.monotonic()
                    return
                time.sleep(0.02)
        threading.Thread(target=poll, daemon=True).start()

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return r.status, r.read().decode()

    def wait_healthy(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}; see {self.logfile}")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"daemon not healthy within {timeout}s; see {self.logfile}")

    def metric(self, name):
        """Sum of the daemon's own metric lines named exactly `name` (any labels)."""
        return self.metrics(name)[name]

    def metrics(self, *names):
        """{name: sum of the metric lines named exactly `name`}, from one scrape."""
        totals = dict.fromkeys(names, 0.0)
        for line in self.get("/internal-backstage/prometheus")[1].splitlines():
            for name in names:
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    totals[name] += float(line.rsplit(" ", 1)[1])
        return totals

    def cpu(self):
        return cpu_seconds(self.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


LOG_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\|\s*(\w+)\]\s?(.*)")


def read_log(path, start=0, end=None):
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    for line in data.decode(errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if m:
            stamp, ms, level, msg = m.groups()
            wall = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000
            yield wall, level, msg, line


def scan_log(path, start=0, end=None):
    """WARN/ERROR counts with one example per distinct message shape, and (with --debug) the
    number of kube-client 'requesting' lines, in bytes [start, end) of the daemon log."""
    levels = collections.Counter()
    shapes = collections.OrderedDict()
    requesting = 0
    for _, level, msg, line in read_log(path, start, end):
        if level == "DEBUG" and msg.startswith("requesting "):
            requesting += 1
        if level in ("WARNING", "WARN", "ERROR", "CRITICAL"):
            levels[level] += 1
            shape = re.sub(r"\d+", "#", msg)[:160]  # app-12 and app-345 are the same problem
            if shape not in shapes:
                shapes[shape] = [0, line[:400]]
            shapes[shape][0] += 1
    return {"levels": dict(levels), "requesting": requesting,
            "distinct": [{"count": c, "example": ex} for c, ex in shapes.values()]}


def saving_times(path, start, result):
    """{app: wall time} of the daemon's 'Saving result <result> for <ns>/<app>' log lines."""
    out = {}
    pat = re.compile(rf"Saving result {result} for [^/]+/(\S+) ")
    for wall, _, msg, _ in read_log(path, start):
        m = pat.match(msg)
        if m:
            out.setdefault(m.group(1), wall)
    return out


# ------------------------------------------------------------------------------------------------
# API request accounting.
# ------------------------------------------------------------------------------------------------

class Window:
    """apiserver counters at the start of a measurement window; `close()` gives the deltas."""

    def __init__(self, kube, flow_schemas):
        self.kube, self.flow_schemas = kube, list(flow_schemas or [])
        kube.mine.clear()
        self.t0 = time.monotonic()
        self.requests, self.flows, self.durations = kube.scrape()

    def close(self, n):
        requests, flows, durations = self.kube.scrape()
        # Mean server-side latency per verb over the window, for all clients together.
        latency = {}
        for verb, resource in (("APPLY", ""), ("POST", ""), ("PATCH", ""), ("GET", ""),
                               ("LIST", ""), ("LIST", "ingresses")):
            c = (durations[(verb, resource, "count")]
                 - self.durations[(verb, resource, "count")])
            if c > 0:
                latency[f"{verb} {resource}".strip()] = {"requests": c, "mean_ms": 1000 * (
                    durations[(verb, resource, "sum")]
                    - self.durations[(verb, resource, "sum")]) / c}
        delta = collections.Counter({k: v - self.requests.get(k, 0) for k, v in requests.items()})
        delta = +delta
        # kube-controller-manager talks protobuf for built-in kinds; the daemon (kube-rs), kubectl
        # and this script talk JSON. Keep the JSON rows and take out our own requests.
        json_rows, protobuf = collections.Counter(), 0
        for (verb, group, resource, sub, code, ctype), d in delta.items():
            if "protobuf" in ctype:
                protobuf += d
            else:
                json_rows[(verb, group, resource, sub, code)] += d
        own = collections.Counter(self.kube.mine)
        for key in sorted(json_rows):
            verb, _, resource, sub, _ = key
            take = min(json_rows[key], own[(verb, resource, sub)])
            json_rows[key] -= take
            own[(verb, resource, sub)] -= take
        json_rows = +json_rows
        exact, per_schema = None, {}
        if self.flow_schemas:
            per_schema = {f: flows.get(f, 0) - self.flows.get(f, 0) for f in self.flow_schemas}
            exact = sum(per_schema.values())
        json_total = sum(json_rows.values())
        daemon = exact if exact is not None else json_total
        return {
            "daemon_requests": daemon,
            "per_deploy": daemon / n,
            "exact": exact is not None,
            "per_flow_schema": per_schema,
            # This script sends no APPLY in a window, and kube-controller-manager none at all.
            "apply_requests": sum(d for k, d in json_rows.items() if k[0] == "APPLY"),
            "json_rows_total": json_total,
            "other_json_clients": max(0.0, json_total - daemon) if exact is not None else None,
            "protobuf_requests": protobuf,
            "window_s": time.monotonic() - self.t0,
            "breakdown": breakdown(json_rows, n),
            "apiserver_latency": latency,
        }


def breakdown(json_rows, n):
    rows = collections.Counter()
    for (verb, group, resource, sub, code), d in json_rows.items():
        res = f"{resource}{'/' + sub if sub else ''}{'.' + group if group else ''}"
        rows[(res, verb, code)] += d
    return [f"{verb:7} {res:52} {code:4} {int(d):7d}  ({d / n:.2f}/deploy)"
            for (res, verb, code), d in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0]))]


# ------------------------------------------------------------------------------------------------
# The benchmark proper.
# ------------------------------------------------------------------------------------------------

def application(ns, i):
    return {
        "apiVersion": API_GROUP,
        "kind": "Application",
        "metadata": {"name": f"app-{i}", "namespace": ns,
                     "labels": {"fiaas/deployment_id": "1"}},
        "spec": {"application": f"app-{i}", "image": "example/app:1", "config": {"version": 3}},
    }


class Tracker:
    """What our watches have seen, with monotonic timestamps."""

    def __init__(self):
        self.lock = threading.Lock()
        self.deploy_seen = {}        # app -> first time its Deployment was seen
        self.deploy_available = {}   # app -> first time available == spec.replicas (current gen)
        self.replicas = {}           # app -> spec.replicas
        self.deploy_events = 0
        self.status_events = 0
        self.status_first = collections.defaultdict(dict)  # app -> {result: first time seen}

    def on_deployment(self, typ, obj, now):
        if typ == "DELETED":
            return
        name = obj["metadata"]["name"]
        spec, st = obj.get("spec", {}), obj.get("status", {})
        want = spec.get("replicas")
        with self.lock:
            self.deploy_events += 1
            self.deploy_seen.setdefault(name, now)
            self.replicas[name] = want
            current = st.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
            if want and current and st.get("availableReplicas") == want:
                self.deploy_available.setdefault(name, now)

    def on_status(self, typ, obj, now):
        if typ == "DELETED":
            return
        app = obj["metadata"].get("labels", {}).get("app")
        result = obj.get("result")
        with self.lock:
            self.status_events += 1
        if app and result:
            with self.lock:
                self.status_first[app].setdefault(result, now)

    def reached(self, app, results):
        """First time (or None) the app's status showed one of `results`; hold the lock."""
        times = [t for r, t in self.status_first.get(app, {}).items() if r in results]
        return min(times) if times else None


def parallel(workers, fn, items):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def create_all(kube, ns, n, workers):
    """POST n Applications over `workers` keep-alive connections; returns ({app: time the POST
    returned}, summary of the POST latencies)."""
    path = f"/apis/{API_GROUP}/namespaces/{ns}/applications"

    def one(i):
        t = time.monotonic()
        kube.request("POST", path, application(ns, i), resource="applications")
        done = time.monotonic()
        return f"app-{i}", done, done - t

    results = parallel(workers, one, range(n))
    return {app: t for app, t, _ in results}, summary([d for _, _, d in results])


def wait_for_pods(kube, ns, expected, timeout):
    """Names of the Pods once the ReplicaSet controller has created `expected` of them."""
    deadline = time.monotonic() + timeout
    while True:
        _, doc = kube.request("GET", f"/api/v1/namespaces/{ns}/pods", verb="LIST",
                              resource="pods")
        pods = [p["metadata"]["name"] for p in doc["items"]]
        if len(pods) >= expected:
            return pods
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(pods)} of {expected} pods after {timeout}s")
        time.sleep(1)


# Pod patches run in separate processes: with threads, the GIL would delay our watch threads
# during the burst and skew the "Deployment available" timestamps.
_worker = {}


def _patch_worker_init(host, port, cafile, token):
    _worker["conn"] = lambda: http.client.HTTPSConnection(
        host, port, context=ssl.create_default_context(cafile=cafile), timeout=60)
    _worker["c"] = _worker["conn"]()
    _worker["token"] = token


def _patch_worker(job):
    path, body = job
    headers = {"Authorization": f"Bearer {_worker['token']}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/merge-patch+json"
    for attempt in range(2):
        try:
            c = _worker["c"]
            c.request("PATCH" if body is not None else "GET", path,
                      body=json.dumps(body).encode() if body is not None else None,
                      headers=headers)
            resp = c.getresponse()
            resp.read()
            return resp.status
        except (http.client.HTTPException, OSError):
            _worker["c"] = _worker["conn"]()
            if attempt:
                raise


def mark_ready(kube, ns, pods, workers):
    """Play the kubelet: every Pod Running with all conditions True, through pods/status, from
    `workers` processes. Returns (start, end) monotonic times of the patches."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [{"type": t, "status": "True", "lastTransitionTime": stamp}
                  for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
    body = {"status": {"phase": "Running", "startTime": stamp, "conditions": conditions,
                       "podIP": "10.244.0.1"}}
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, _patch_worker_init,
                  (kube.host, kube.port, kube.cafile, kube.token)) as pool:
        pool.map(_patch_worker, [("/version", None)] * workers, chunksize=1)  # warm up
        start = time.monotonic()
        codes = pool.map(_patch_worker, [(f"/api/v1/namespaces/{ns}/pods/{name}/status", body)
                                         for name in pods], chunksize=4)
        end = time.monotonic()
    with kube.lock:
        kube.mine[("PATCH", "pods", "status")] += len(pods)
    bad = [c for c in codes if c != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} pod status patches failed: HTTP {sorted(set(bad))}")
    return start, end


def task_cpu_seconds(pid):
    """CPU time of all of a process's threads, from schedstat (ns resolution)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just exited
    return total / 1e9


def wait_quiet(tracker, quiet, limit):
    """Until our Deployment watch has seen no event for `quiet` seconds (at most `limit`)."""
    deadline = time.monotonic() + limit
    with tracker.lock:
        last = (tracker.deploy_events, time.monotonic())
    while time.monotonic() < deadline:
        time.sleep(0.2)
        with tracker.lock:
            events = tracker.deploy_events
        if events != last[0]:
            last = (events, time.monotonic())
        elif time.monotonic() - last[1] >= quiet:
            return True
    return False


def fanout_probe(kube, ns, daemon, tracker, count, workers):
    """Daemon CPU per Deployment watch event while every deploy of the namespace waits for its
    rollout. Touches an annotation on `count` Deployments (no spec change: no rollout, no
    redeploy) and divides the daemon's CPU time over [a 5 s lead-in, the touches, 3 s after] by
    the Deployment events our own watch saw meanwhile. KCM may still be updating Deployments at
    large N; those events cost the daemon the same, so they are simply counted too. Without
    events the daemon idles at well under 1 ms CPU/s, which is neglected."""
    quiet = wait_quiet(tracker, 3, 30)
    with tracker.lock:
        e0 = tracker.deploy_events
    c0 = task_cpu_seconds(daemon.pid)
    time.sleep(5)
    with tracker.lock:
        lead_in_events = tracker.deploy_events - e0
    names = sorted(tracker.deploy_seen)[:count]
    stamp = str(time.time())
    parallel(workers, lambda name: kube.request(
        "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}",
        {"metadata": {"annotations": {"fiaas-load-bench/touched": stamp}}},
        content_type="application/merge-patch+json", resource="deployments"), names)
    time.sleep(3)
    cpu = task_cpu_seconds(daemon.pid) - c0
    with tracker.lock:
        events = tracker.deploy_events - e0
    return {"deployments_touched": len(names), "events_seen": events,
            "lead_in_events": lead_in_events, "quiet_before": quiet,
            "daemon_cpu_s": cpu, "us_per_event": 1e6 * cpu / max(1, events)}


def delete_namespace(kube, ns, timeout=600):
    kube.request("DELETE", f"/api/v1/namespaces/{ns}", resource="namespaces", ok=(200, 202, 404))
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        status, _ = kube.request("GET", f"/api/v1/namespaces/{ns}", resource="namespaces",
                                 ok=None)
        if status == 404:
            return time.monotonic() - t0
        time.sleep(1)
    log(f"namespace {ns} still terminating after {timeout}s; not waiting any longer")
    return None


def applies_counted(daemons):
    """The daemons' deployer_time_to_deploy_count, summed (a daemon not serving yet counts 0)."""
    total = 0.0
    for d in daemons:
        try:
            total += d.metric("deployer_time_to_deploy_count")
        except OSError:
            pass
    return total


def wait_applied(daemons, tracker, created, t0, timeout):
    """Until every app has a Deployment and a status >= RUNNING, then (up to 30 s more) until the
    daemons counted N finished applies. Returns the time the last app became applied, or None."""
    n = len(created)
    deadline = t0 + timeout
    last_report = time.monotonic()
    t_applied = None
    while time.monotonic() < deadline:
        with tracker.lock:
            n_deploy = sum(1 for a in created if a in tracker.deploy_seen)
            n_running = sum(1 for a in created if tracker.reached(a, PAST_RUNNING))
            if t_applied is None and n_deploy == n and n_running == n:
                t_applied = max(max(tracker.deploy_seen[a] for a in created),
                                max(tracker.reached(a, PAST_RUNNING) for a in created))
        if t_applied is not None and (applies_counted(daemons) >= n
                                      or time.monotonic() > t_applied + 30):
            break
        for d in daemons:
            if d.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {d.proc.returncode}; see {d.logfile}")
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            log(f"  t+{last_report - t0:5.1f}s: {n_deploy}/{n} Deployments, "
                f"{n_running}/{n} statuses >= RUNNING")
        time.sleep(0.05)
    return t_applied


def new_namespace(kube, case, n):
    ns = f"fiaas-load-{case}-{n}-{int(time.time())}"
    log(f"=== {case}, N={n}: namespace {ns} ===")
    kube.request("POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                 resource="namespaces")
    return ns


def open_watches(kube, ns, tracker):
    """Our watches on Deployments and ApplicationStatuses; returns their stop functions. They are
    opened before the first window and closed after the last one, so they never show up in the
    deltas (the apiserver counts a WATCH when it ends)."""
    stops = []
    for path, resource, handler in (
            (f"/apis/apps/v1/namespaces/{ns}/deployments", "deployments", tracker.on_deployment),
            (f"/apis/{API_GROUP}/namespaces/{ns}/application-statuses", "application-statuses",
             tracker.on_status)):
        _, doc = kube.request("GET", path, verb="LIST", resource=resource)
        stops.append(kube.watch(path, resource, doc["metadata"]["resourceVersion"], handler))
    return stops


def sample_background(kube, flow_schemas, seconds, daemons_running=True):
    """Other clients' JSON traffic (and the idle daemons') before a measurement."""
    bg = Window(kube, flow_schemas)
    time.sleep(seconds)
    bg = bg.close(1)
    if daemons_running and flow_schemas:
        flows = kube.scrape()[1]
        for f in flow_schemas:
            if flows.get(f, 0) == 0:
                log(f"WARNING: no request counted under flow schema {f}; the exact count is "
                    "not available")
    return {"json_req_per_s": bg["json_rows_total"] / bg["window_s"],
            "daemon_idle_req_per_s": bg["daemon_requests"] / bg["window_s"]}


def identities(kube, args, ns, outdir, sas, cleanups):
    """Per ServiceAccount name: kubeconfig (None with --as-admin); the flow schemas. Appends the
    clean-ups to `cleanups` as it goes, so a failure leaves none behind."""
    kubeconfigs, flow_schemas = {}, []
    for sa in sas:
        if args.as_admin:
            kubeconfigs[sa] = None
            continue
        path, flow_schema, cleanup = daemon_identity(kube, ns, outdir, sa)
        kubeconfigs[sa] = path
        flow_schemas.append(flow_schema)
        cleanups.append(cleanup)
    return kubeconfigs, flow_schemas


def stop_daemons(daemons):
    """SIGTERM to all at once (sharded replicas hand their shards over), then wait for each."""
    for d in daemons:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGTERM)
    return [d.stop() for d in daemons]


def merge_scans(scans):
    levels = collections.Counter()
    for s in scans:
        levels.update(s["levels"])
    return {"levels": dict(levels), "requesting": sum(s["requesting"] for s in scans),
            "distinct": [d for s in scans for d in s["distinct"]]}


def applied_phase(kube, args, r, n, tracker, flow_schemas, daemons, start):
    """Measures from `start()` until every app is applied and fills `r`. `start` creates the
    Applications, or starts the daemons (appending them to `daemons`) for Applications that
    exist already, and returns {app: its start time}."""
    pids = cluster_pids()
    cpu0 = {c: cpu_seconds(p) for c, p in pids.items()}
    daemon_cpu0 = {d.pid: d.cpu() for d in daemons}
    log_start = {d.logfile: os.path.getsize(d.logfile) for d in daemons}
    window = Window(kube, flow_schemas)
    with tracker.lock:
        events0 = tracker.deploy_events
    t0 = time.monotonic()
    created = start()
    r["create_s"] = time.monotonic() - t0
    t_applied = wait_applied(daemons, tracker, created, t0, args.timeout)
    t_end = time.monotonic()
    r["applies_counted"] = applies_counted(daemons)
    if r["applies_counted"]:
        r["daemon_mean_apply_s"] = sum(d.metric("deployer_time_to_deploy_sum")
                                       for d in daemons) / r["applies_counted"]
    r["api"] = api = window.close(n)
    r["daemon_apply_per_s"] = api["apply_requests"] / api["window_s"]
    with tracker.lock:
        r["deployment_events_in_window"] = tracker.deploy_events - events0
    cpu1 = {c: cpu_seconds(p) for c, p in pids.items()}
    r["cpu_s"] = {c: cpu1[c] - cpu0[c] for c in cpu1
                  if cpu0.get(c) is not None and cpu1.get(c) is not None}
    by_daemon = [d.cpu() - daemon_cpu0.get(d.pid, 0) for d in daemons]
    r["cpu_s"]["daemon"] = sum(by_daemon)
    r["rss_applied_mib"] = proc_status(daemons[0].pid)
    if len(daemons) > 1:
        r["daemon_cpu_s_by_replica"] = by_daemon
        r["rss_applied_by_replica"] = [proc_status(d.pid) for d in daemons]
    r["loadavg_applied"] = loadavg()

    with tracker.lock:
        no_deploy = sorted(a for a in created if a not in tracker.deploy_seen)
        no_running = sorted(a for a in created if not tracker.reached(a, PAST_RUNNING))
        failed = sorted(a for a in created if "FAILED" in tracker.status_first.get(a, {}))
        to_deploy = [tracker.deploy_seen[a] - created[a] for a in created
                     if a in tracker.deploy_seen]
        to_running = [tracker.reached(a, PAST_RUNNING) - created[a] for a in created
                      if tracker.reached(a, PAST_RUNNING)]
        initiated = {a: tracker.status_first.get(a, {}).get("INITIATED") for a in created}
        to_initiated = [initiated[a] - created[a] for a in created if initiated[a]]
        waiting = [tracker.reached(a, PAST_RUNNING) - initiated[a] for a in created
                   if initiated[a] and tracker.reached(a, PAST_RUNNING)]
        running_to_deploy = [tracker.deploy_seen[a] - tracker.reached(a, PAST_RUNNING)
                             for a in created
                             if a in tracker.deploy_seen and tracker.reached(a, PAST_RUNNING)]
    r["per_app_create_to_initiated_s"] = summary(to_initiated)
    r["per_app_initiated_to_running_s"] = summary(waiting)
    r["per_app_running_to_deployment_s"] = summary(running_to_deploy)
    r["stuck"] = {"n_no_deployment": len(no_deploy), "no_deployment": no_deploy[:20],
                  "n_no_running": len(no_running), "no_running": no_running[:20],
                  "n_failed": len(failed), "failed": failed[:20]}
    r["applied_s"] = None if t_applied is None else t_applied - t0
    r["apply_counted_s"] = t_end - t0 if r["applies_counted"] >= n else None
    if r["applied_s"]:
        r["deploys_per_s"] = n / r["applied_s"]
        r["ms_per_deploy"] = 1000 * r["applied_s"] / n
    else:
        log(f"NOT all applied within {args.timeout}s: {len(no_deploy)} without Deployment, "
            f"{len(no_running)} without RUNNING")
    r["per_app_create_to_deployment_s"] = summary(to_deploy)
    r["per_app_create_to_running_s"] = summary(to_running)
    r["log_to_applied"] = merge_scans([
        scan_log(d.logfile, log_start.get(d.logfile, 0), os.path.getsize(d.logfile))
        for d in daemons])
    if args.debug_count:
        api["debug_log_requesting"] = r["log_to_applied"]["requesting"]
    log(f"{r['case']} N={n}: applied in {r['applied_s']}s; {api['daemon_requests']:.0f} daemon "
        f"API requests ({api['per_deploy']:.2f}/deploy); RSS {r['rss_applied_mib']}")
    return created


def success_phase(kube, args, r, ns, n, daemon, tracker, flow_schemas, created):
    """Plays the kubelet and measures, per app, Deployment available -> status SUCCESS."""
    with tracker.lock:
        expected = sum(tracker.replicas.get(a) or 0 for a in created)
    pods = wait_for_pods(kube, ns, expected, 300)
    log(f"playing the kubelet: marking {len(pods)} pods Running+Ready")
    log_start = os.path.getsize(daemon.logfile)
    window = Window(kube, flow_schemas)
    c0 = daemon.cpu()
    p0, p1 = mark_ready(kube, ns, pods, args.kubelet_processes)
    deadline = p1 + args.timeout
    while time.monotonic() < deadline:
        with tracker.lock:
            done = sum(1 for a in created if tracker.reached(a, {"SUCCESS", "FAILED"}))
        if done >= n:
            break
        time.sleep(0.05)
    time.sleep(1)  # let the final writes (status, Event) land
    api = window.close(n)
    saved = saving_times(daemon.logfile, log_start, "SUCCESS")
    with tracker.lock:
        lat, detect, write, no_avail, no_success = [], [], [], [], []
        for a in created:
            av = tracker.deploy_available.get(a)
            ok = tracker.status_first.get(a, {}).get("SUCCESS")
            if av is None:
                no_avail.append(a)
            elif ok is None:
                no_success.append(a)
            else:
                lat.append(ok - av)
                if a in saved:  # split at the daemon's "Saving result SUCCESS" line
                    detect.append(saved[a] - (av + WALL))
                    write.append((ok + WALL) - saved[a])
        n_success = sum(1 for a in created if "SUCCESS" in tracker.status_first.get(a, {}))
        last_success = max((tracker.status_first[a]["SUCCESS"] for a in created
                            if "SUCCESS" in tracker.status_first.get(a, {})), default=None)
        avail = [tracker.deploy_available[a] for a in created if a in tracker.deploy_available]
    r["success"] = {
        "pods": len(pods), "patch_s": p1 - p0, "n_success": n_success,
        "available_to_success_s": summary(lat),
        "available_to_daemon_saving_s": summary(detect),
        "daemon_saving_to_status_seen_s": summary(write),
        "patch_start_to_last_available_s": max(avail) - p0 if avail else None,
        "patch_start_to_last_success_s": last_success - p0 if last_success else None,
        "n_never_available": len(no_avail), "never_available": no_avail[:20],
        "n_available_no_success": len(no_success), "available_no_success": no_success[:20],
        "api": api, "daemon_cpu_s": daemon.cpu() - c0,
        "rss_mib": proc_status(daemon.pid),
    }
    log(f"Deployment available -> SUCCESS: {fmt_summary(summary(lat))}")


def restart_phase(kube, args, ns, n, daemons, binary, kubeconfig, flow_schemas, outdir, tracker):
    """Stops the daemon (SIGTERM) once all N apps are SUCCESS, starts a new one and measures how
    soon it is ready and which requests it sends meanwhile. Ready: /healthz answers 200, no deploy
    is queued or in progress, and the daemon has sent no request for --restart-quiet s; the ready
    time is that of its last request before the quiet (or of /healthz, if later)."""
    out = {}
    wait_quiet(tracker, 3, 30)
    old = daemons[0]
    t = time.monotonic()
    out["old_exit"] = old.stop()
    out["old_stop_s"] = time.monotonic() - t
    out["old_log_all"] = scan_log(old.logfile)
    time.sleep(1)
    with tracker.lock:
        events0, statuses0 = tracker.deploy_events, tracker.status_events
    window = Window(kube, flow_schemas)
    count = last = sum(window.flows.get(f, 0) for f in flow_schemas)
    logfile = os.path.join(outdir, f"daemon-at-once-{n}-restart.log")
    daemon = Daemon(binary, ns, args.max_concurrent_deploys, logfile, args.debug_count,
                    kubeconfig)
    daemons[0] = daemon
    daemon.time_healthy()
    t0 = daemon.started
    t_healthy = t_ready = None
    last_change = t0
    busy = None
    while True:
        now = time.monotonic()
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"restarted daemon exited with {daemon.proc.returncode}")
        t_healthy = daemon.healthy_at
        if flow_schemas:
            flows = kube.scrape()[1]
            count = sum(flows.get(f, 0) for f in flow_schemas)
            if count != last:
                last, last_change = count, now
        if t_healthy is not None:
            m = daemon.metrics("fiaas_deploys_in_progress", "fiaas_deploys_queued")
            busy = m["fiaas_deploys_in_progress"] + m["fiaas_deploys_queued"]
            if busy:
                last_change = now
        if (t_ready is None and t_healthy is not None and busy == 0
                and now - last_change >= args.restart_quiet):
            t_ready = max(t_healthy, last_change)
            out["rss_ready_mib"] = proc_status(daemon.pid)
        if t_ready is not None and now >= t0 + args.restart_window:
            break
        if now > t0 + args.restart_limit:
            log(f"restarted daemon not ready within {args.restart_limit}s")
            break
        time.sleep(0.2)
    api = window.close(n)
    with tracker.lock:
        out["deployment_events"] = tracker.deploy_events - events0
        out["status_events"] = tracker.status_events - statuses0
    out.update({
        "healthy_s": None if t_healthy is None else t_healthy - t0,
        "ready_s": None if t_ready is None else t_ready - t0,
        "api": api,
        # A row with at least one request per two apps is per-app work, not a constant.
        "per_app_rows": [line for line in api["breakdown"]
                         if int(line.split()[3]) >= max(2, n // 2)],
        "rss_now_mib": proc_status(daemon.pid),
        "daemon_cpu_s": daemon.cpu(),
    })
    if not flow_schemas:
        out["note"] = "with --as-admin the quiet period is not observed (no flow schema)"
    log(f"restart: healthy after {out['healthy_s']}s, ready after {out['ready_s']}s; "
        f"{api['daemon_requests']:.0f} requests in the first {api['window_s']:.1f}s")
    return out


def run_at_once(kube, args, binary, n, outdir, success, restart):
    """The `at-once` case: N Applications created at once while the daemon runs; then the
    fan-out probe, the SUCCESS phase and the `restart` case, as asked."""
    ns = new_namespace(kube, "at-once", n)
    r = {"case": "at-once", "n": n, "namespace": ns, "loadavg_start": loadavg(),
         "max_concurrent_deploys": args.max_concurrent_deploys}
    cleanups, daemons, stops = [], [], []
    tracker = Tracker()
    try:
        kubeconfigs, flow_schemas = identities(kube, args, ns, outdir, [SA_NAME], cleanups)
        daemon = Daemon(binary, ns, args.max_concurrent_deploys,
                        os.path.join(outdir, f"daemon-at-once-{n}.log"), args.debug_count,
                        kubeconfigs[SA_NAME])
        daemons.append(daemon)
        daemon.wait_healthy()
        time.sleep(args.settle)  # let the daemon's watches list and settle
        r["rss_idle_mib"] = proc_status(daemon.pid)
        stops = open_watches(kube, ns, tracker)
        r["background"] = sample_background(kube, flow_schemas, args.background_window)

        def create():
            created, r["create_post_latency_s"] = create_all(kube, ns, n, args.create_workers)
            log(f"created {n} Applications in {time.monotonic() - t:.2f}s")
            return created

        t = time.monotonic()
        created = applied_phase(kube, args, r, n, tracker, flow_schemas, daemons, create)

        # Cost of one Deployment event while N deploys wait for their rollouts.
        if args.fanout_probe:
            time.sleep(2)
            r["fanout"] = fanout_probe(kube, ns, daemon, tracker, min(n, args.fanout_probe),
                                       args.create_workers)
            log(f"fan-out probe: {r['fanout']}")

        if success or restart:
            success_phase(kube, args, r, ns, n, daemon, tracker, flow_schemas, created)
            if args.fanout_probe:  # the same probe with no deploy waiting, for the base cost
                r["fanout_idle"] = fanout_probe(kube, ns, daemon, tracker,
                                                min(n, args.fanout_probe), args.create_workers)
                log(f"fan-out probe with no deploy waiting: {r['fanout_idle']}")
        if restart:
            if r["success"]["n_success"] < n:
                r["restart"] = {"skipped": f"only {r['success']['n_success']} of {n} apps "
                                           "reached SUCCESS"}
            else:
                r["restart"] = restart_phase(kube, args, ns, n, daemons, binary,
                                             kubeconfigs[SA_NAME], flow_schemas, outdir, tracker)
    except Exception as e:  # noqa: BLE001 - recorded; the namespace is still cleaned up
        import traceback
        traceback.print_exc()
        r["error"] = f"{type(e).__name__}: {e}"
    finally:
        finish(kube, args, r, ns, stops, daemons, cleanups)
    return r


def finish(kube, args, r, ns, stops, daemons, cleanups):
    for stop in stops:
        stop()
    if daemons:
        exits = stop_daemons(daemons)
        r["daemon_exit"] = exits[0] if len(exits) == 1 else exits
        r["log_all"] = merge_scans([scan_log(d.logfile) for d in daemons])
    for cleanup in cleanups:
        cleanup()
    if not args.keep:
        log(f"deleting namespace {ns}")
        r["ns_delete_s"] = delete_namespace(kube, ns)


def run_pre_existing(kube, args, binary, n, outdir):
    """The `pre-existing` case: N Applications created with no daemon running; then the daemon
    starts, and the clock runs from its start until all are applied."""
    ns = new_namespace(kube, "pre-existing", n)
    r = {"case": "pre-existing", "n": n, "namespace": ns, "loadavg_start": loadavg(),
         "max_concurrent_deploys": args.max_concurrent_deploys}
    cleanups, daemons, stops = [], [], []
    tracker = Tracker()
    try:
        kubeconfigs, flow_schemas = identities(kube, args, ns, outdir, [SA_NAME], cleanups)
        stops = open_watches(kube, ns, tracker)
        t = time.monotonic()
        created, r["create_post_latency_s"] = create_all(kube, ns, n, args.create_workers)
        r["precreate_s"] = time.monotonic() - t
        log(f"created {n} Applications in {r['precreate_s']:.2f}s, no daemon running")
        r["background"] = sample_background(kube, flow_schemas, args.background_window,
                                            daemons_running=False)

        def start():
            d = Daemon(binary, ns, args.max_concurrent_deploys,
                       os.path.join(outdir, f"daemon-pre-existing-{n}.log"), args.debug_count,
                       kubeconfigs[SA_NAME])
            daemons.append(d)
            d.time_healthy()
            return dict.fromkeys(created, d.started)

        applied_phase(kube, args, r, n, tracker, flow_schemas, daemons, start)
        if daemons[0].healthy_at is not None:
            r["healthy_s"] = daemons[0].healthy_at - daemons[0].started
    except Exception as e:  # noqa: BLE001 - recorded; the namespace is still cleaned up
        import traceback
        traceback.print_exc()
        r["error"] = f"{type(e).__name__}: {e}"
    finally:
        finish(kube, args, r, ns, stops, daemons, cleanups)
    return r


def shard_spread(kube, ns):
    """{holder: number of shard leases it holds}, from one listing."""
    _, doc = kube.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                          verb="LIST", resource="leases")
    spread = collections.Counter()
    for lease in doc["items"]:
        if lease["metadata"]["name"].startswith(SHARD_LEASE_PREFIX):
            holder = (lease.get("spec") or {}).get("holderIdentity")
            if holder:
                spread[holder] += 1
    return spread


def run_replicas(kube, args, binary, n, outdir):
    """The `replicas` case: like `at-once`, with --replicas daemons sharing --shards shards,
    each as its own ServiceAccount (so each one's requests are counted on their own)."""
    ns = new_namespace(kube, "replicas", n)
    r = {"case": "replicas", "n": n, "namespace": ns, "loadavg_start": loadavg(),
         "max_concurrent_deploys": args.max_concurrent_deploys, "replicas": args.replicas,
         "shards": args.shards}
    cleanups, daemons, stops = [], [], []
    tracker = Tracker()
    names = [f"replica-{i}" for i in range(args.replicas)]
    try:
        kubeconfigs, flow_schemas = identities(kube, args, ns, outdir, names, cleanups)
        for name in names:
            daemons.append(Daemon(binary, ns, args.max_concurrent_deploys,
                                  os.path.join(outdir, f"daemon-replicas-{n}-{name}.log"),
                                  args.debug_count, kubeconfigs[name],
                                  extra=["--shards", str(args.shards)], identity=name))
        for d in daemons:
            d.wait_healthy()
        # Every shard held, and spread evenly, before the clock starts.
        t, share = time.monotonic(), -(-args.shards // args.replicas)
        while True:
            spread = shard_spread(kube, ns)
            if (sum(spread.values()) == args.shards and set(spread) == set(names)
                    and max(spread.values()) <= share):
                break
            if time.monotonic() - t > 120:
                raise RuntimeError(f"shards not spread within 120 s: {dict(spread)}")
            time.sleep(0.2)
        r["shards_spread_s"] = time.monotonic() - t
        r["shard_spread"] = dict(spread)
        time.sleep(args.settle)
        r["rss_idle_mib"] = proc_status(daemons[0].pid)
        r["rss_idle_by_replica"] = [proc_status(d.pid) for d in daemons]
        stops = open_watches(kube, ns, tracker)
        r["background"] = sample_background(kube, flow_schemas, args.background_window)

        def create():
            created, r["create_post_latency_s"] = create_all(kube, ns, n, args.create_workers)
            return created

        applied_phase(kube, args, r, n, tracker, flow_schemas, daemons, create)
        r["per_replica_requests"] = [r["api"]["per_flow_schema"].get(f) for f in flow_schemas]
    except Exception as e:  # noqa: BLE001 - recorded; the namespace is still cleaned up
        import traceback
        traceback.print_exc()
        r["error"] = f"{type(e).__name__}: {e}"
    finally:
        finish(kube, args, r, ns, stops, daemons, cleanups)
    return r


# ------------------------------------------------------------------------------------------------
# The server-side-apply ceiling: how fast this script itself can apply the objects of a deploy,
# measured before and after the daemon runs, as the yardstick for the daemon's apply rate.
# ------------------------------------------------------------------------------------------------

_ceiling = {}


def _ceiling_init(host, port, cafile, token, templates):
    _ceiling["c"] = http.client.HTTPSConnection(
        host, port, context=ssl.create_default_context(cafile=cafile), timeout=60)
    _ceiling["token"] = token
    _ceiling["templates"] = templates


def _ceiling_run(job):
    """Applies one deploy's objects for name after name until `end` (wall clock). Returns
    (applies done by `end`, deploys done by `end`, latencies, errors, its own CPU seconds)."""
    wid, ns, begin, end = job
    c = _ceiling["c"]
    headers = {"Authorization": f"Bearer {_ceiling['token']}", "Accept": "application/json",
               "Content-Type": "application/apply-patch+yaml"}
    c.request("GET", "/version", headers=headers)  # open the connection before the clock
    c.getresponse().read()
    time.sleep(max(0.0, begin - time.time()))
    cpu = time.process_time()
    applies = sets = 0
    lat, errors = [], collections.Counter()
    k = 0
    while time.time() < end:
        name = f"c{wid}-{k}"
        k += 1
        complete = True
        for path, body in _ceiling["templates"]:
            t = time.time()
            c.request("PATCH", path.replace("@NS@", ns).replace("@N@", name),
                      body=body.replace("@NS@", ns).replace("@N@", name).encode(),
                      headers=headers)
            resp = c.getresponse()
            resp.read()
            done = time.time()
            if resp.status not in (200, 201):
                errors[resp.status] += 1
            if done <= end:
                applies += 1
                lat.append(done - t)
            else:
                complete = False
        sets += complete
    return applies, sets, lat, dict(errors), time.process_time() - cpu


def served_version(kube, group_version, plural):
    """The group version to apply `plural` with: the rendered one if the apiserver serves the
    resource there, else the first version of the group that does (as the daemon falls back to
    policy/v1beta1 for PodDisruptionBudgets on older clusters, `fiaas-k8s/src/apply.rs`)."""
    def serves(gv):
        base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        status, doc = kube.request("GET", base, resource="", ok=None)
        return status == 200 and any(r["name"] == plural for r in doc.get("resources", []))

    if serves(group_version):
        return group_version
    group = group_version.split("/")[0]
    _, doc = kube.request("GET", f"/apis/{group}", resource="")
    for v in doc.get("versions", []):
        if serves(v["groupVersion"]):
            return v["groupVersion"]
    raise RuntimeError(f"the apiserver serves no version of {group}/{plural}")


def ceiling_templates(kube, renderer):
    """(path, body) of every apply of one deploy, with @N@ for the app and @NS@ for the
    namespace: the ApplicationStatus twice (INITIATED, RUNNING), then the objects `fiaas render`
    gives for the benchmark's Application, with the daemon's flags."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        f.write("version: 3\n")
        f.flush()
        out = subprocess.run([renderer, "render", "-o", "json", f.name, "--name", "zzappzz",
                              "--namespace", "zznszz", "--image", "example/app:1",
                              *DAEMON_FLAGS], check=True, capture_output=True, text=True).stdout
    query = "?fieldManager=fiaas-deploy-daemon&force=true"
    templates = []
    for result in ("INITIATED", "RUNNING"):
        status = {"apiVersion": API_GROUP, "kind": "ApplicationStatus",
                  "metadata": {"name": "@N@-status", "namespace": "@NS@",
                               "labels": {"app": "@N@", "fiaas/deployment_id": "1"},
                               "annotations": {"fiaas/last_updated": "2026-01-01T00:00:00+00:00"}},
                  "result": result, "logs": []}
        templates.append((f"/apis/{API_GROUP}/namespaces/@NS@/application-statuses/@N@-status"
                          + query, json.dumps(status)))
    for item in json.loads(out)["items"]:
        plural = PLURALS.get(item["kind"], item["kind"].lower() + "s")
        group_version = served_version(kube, item["apiVersion"], plural)
        if group_version != item["apiVersion"] and item["kind"] == "PodDisruptionBudget":
            item["spec"].pop("unhealthyPodEvictionPolicy", None)  # not in policy/v1beta1
        item["apiVersion"] = group_version
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        body = json.dumps(item).replace("zzappzz", "@N@").replace("zznszz", "@NS@")
        templates.append((f"{base}/namespaces/@NS@/{plural}/@N@{query}", body))
    return templates


def ssa_ceiling(kube, args, templates, label):
    """Applies rendered deploys as fast as --ceiling-connections processes can for
    --ceiling-seconds, each new app creating its objects (as the daemon's deploys do), into a
    scratch namespace that is deleted afterwards."""
    ns = new_namespace(kube, "ceiling", 0)
    out = {"label": label, "namespace": ns, "connections": args.ceiling_connections,
           "loadavg_start": loadavg()}
    try:
        pids = cluster_pids()
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.ceiling_connections, _ceiling_init,
                      (kube.host, kube.port, kube.cafile, kube.token, templates)) as pool:
            begin = time.time() + 2  # the processes start and connect meanwhile
            end = begin + args.ceiling_seconds
            cpu0 = {c: cpu_seconds(p) for c, p in pids.items()}
            res = pool.map(_ceiling_run, [(w, ns, begin, end)
                                          for w in range(args.ceiling_connections)], chunksize=1)
            cpu1 = {c: cpu_seconds(p) for c, p in pids.items()}
        applies = sum(x[0] for x in res)
        errors = collections.Counter()
        for x in res:
            errors.update(x[3])
        out.update({
            "seconds": args.ceiling_seconds, "applies": applies,
            "deploys": sum(x[1] for x in res),
            "applies_per_s": applies / args.ceiling_seconds,
            "deploys_per_s": sum(x[1] for x in res) / args.ceiling_seconds,
            "latency_s": summary([t for x in res for t in x[2]]),
            "errors": dict(errors),
            "client_cpu_s": sum(x[4] for x in res),
            "cpu_s": {c: cpu1[c] - cpu0[c] for c in cpu1
                      if cpu0.get(c) is not None and cpu1.get(c) is not None},
        })
        log(f"SSA ceiling ({label}): {out['applies_per_s']:.0f} applies/s "
            f"({out['deploys_per_s']:.1f} deploys/s); errors {dict(errors) or 'none'}")
    except Exception as e:  # noqa: BLE001 - recorded; the namespace is still cleaned up
        import traceback
        traceback.print_exc()
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        log(f"deleting namespace {ns}")
        out["ns_delete_s"] = delete_namespace(kube, ns)
    return out


# ------------------------------------------------------------------------------------------------
# Report.
# ------------------------------------------------------------------------------------------------

def fmt_api(p, api, n, indent, unit="deploy"):
    src = ("exact, from the daemon's own flow schema" if api["exact"]
           else "JSON requests minus this script's own")
    p(f"{indent}API requests by the daemon: {api['daemon_requests']:.0f} = "
      f"{api['per_deploy']:.2f} per {unit} ({src}; window {api['window_s']:.1f}s)")
    if "debug_log_requesting" in api:
        p(f"{indent}  cross-check, kube-client 'requesting' lines in the --debug log: "
          f"{api['debug_log_requesting']} ({api['debug_log_requesting'] / n:.2f}/deploy)")
    extra = api.get("other_json_clients")
    p(f"{indent}  by verb and resource (apiserver_request_total, JSON clients minus this script"
      + (f"; includes {extra:.0f} requests of other clients of the shared cluster" if extra
         else "") + "):")
    for line in api["breakdown"]:
        p(f"{indent}    {line}")
    p(f"{indent}  (kube-controller-manager's protobuf requests meanwhile: "
      f"{api['protobuf_requests']:.0f})")
    lat = api.get("apiserver_latency") or {}
    if lat:
        p(f"{indent}  apiserver-side mean latency, all clients: " + ", ".join(
            f"{v} {x['mean_ms']:.0f} ms (n={x['requests']:.0f})" for v, x in lat.items()))


def report_case(p, r):
    n = r["n"]
    pre = r["case"] == "pre-existing"
    start = "daemon start" if pre else "create"
    p(f"\n{r['case']}, N = {n}  (namespace {r['namespace']})")
    if r["case"] == "replicas":
        p(f"  {r['replicas']} replicas with --shards {r['shards']}, each its own ServiceAccount; "
          f"shards spread {r.get('shard_spread')} "
          + (f"{r['shards_spread_s']:.1f}s after all answered /healthz"
             if r.get("shards_spread_s") is not None else ""))
    if r.get("error"):
        p(f"  ERROR: {r['error']}")
    p(f"  load average (1/5/15 min): {r.get('loadavg_start')} at start, "
      f"{r.get('loadavg_applied')} when applied")
    if "create_s" not in r:
        p("  (run did not get to creating Applications)")
        return
    if pre:
        p(f"  created {n} Applications with no daemon running in {r['precreate_s']:.2f}s; the "
          f"clock starts when the daemon is started (/healthz 200 after "
          f"{r.get('healthy_s', float('nan')):.2f}s)")
    else:
        p(f"  created {n} Applications (parallel POSTs) in {r['create_s']:.2f}s; POST latency "
          f"{fmt_summary(r.get('create_post_latency_s'))}")
    if r.get("applied_s") is not None:
        p(f"  ALL APPLIED (every Deployment exists, every status >= RUNNING): "
          f"{r['applied_s']:.2f}s after the {'daemon start' if pre else 'first create'}")
        p(f"    = {r['deploys_per_s']:.1f} deploys/s, {r['ms_per_deploy']:.1f} ms/deploy")
    else:
        p("  ALL APPLIED: NOT REACHED")
    if r.get("apply_counted_s") is not None:
        p(f"  daemon's deployer_time_to_deploy_count reached {int(r['applies_counted'])} at "
          f"{r['apply_counted_s']:.2f}s")
    else:
        p(f"  daemon's deployer_time_to_deploy_count: only {r.get('applies_counted')}")
    p(f"  per app, {start} -> its Deployment exists : "
      f"{fmt_summary(r['per_app_create_to_deployment_s'])}")
    p(f"  per app, {start} -> its status >= RUNNING : "
      f"{fmt_summary(r['per_app_create_to_running_s'])}")
    p(f"    split: {start} -> INITIATED               : "
      f"{fmt_summary(r.get('per_app_create_to_initiated_s'))}")
    p(f"           INITIATED -> RUNNING (permit wait): "
      f"{fmt_summary(r.get('per_app_initiated_to_running_s'))}")
    p(f"           RUNNING -> Deployment exists      : "
      f"{fmt_summary(r.get('per_app_running_to_deployment_s'))}")
    if r.get("daemon_mean_apply_s") is not None:
        p(f"  daemon's mean apply time (deployer_time_to_deploy sum/count): "
          f"{r['daemon_mean_apply_s']:.3f}s with {r['max_concurrent_deploys']} permits"
          + (" per replica" if r["case"] == "replicas" else ""))
    st = r["stuck"]
    if st["n_no_deployment"] or st["n_no_running"] or st["n_failed"]:
        p(f"  STUCK/FAILED apps: {st}")
    fmt_api(p, r["api"], n, "  ")
    p(f"  daemon APPLY requests: {r['api']['apply_requests']:.0f} in the "
      f"{r['api']['window_s']:.1f}s window = {r['daemon_apply_per_s']:.0f} applies/s")
    if r.get("per_replica_requests"):
        p("  requests per replica (own flow schemas): "
          + ", ".join(f"{x:.0f}" for x in r["per_replica_requests"] if x is not None))
    bg = r["background"]
    p(f"  background before the run: other JSON clients {bg['json_req_per_s']:.2f} req/s, "
      f"idle daemon {bg['daemon_idle_req_per_s']:.2f} req/s")
    p(f"  Deployment watch events in the window (as seen by this script): "
      f"{r.get('deployment_events_in_window')}")
    cpu = r["cpu_s"]
    p("  CPU seconds in the window: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
      + f"  -> daemon{'s' if r['case'] == 'replicas' else ''} "
        f"{1000 * cpu['daemon'] / n:.2f} ms/deploy")
    a = r["rss_applied_mib"]
    if r.get("rss_applied_by_replica"):
        for i, (idle, ap, c) in enumerate(zip(r["rss_idle_by_replica"],
                                              r["rss_applied_by_replica"],
                                              r["daemon_cpu_s_by_replica"])):
            p(f"  replica-{i}: idle VmRSS {idle['VmRSS']:.1f} MiB; applied VmRSS "
              f"{ap['VmRSS']:.1f} MiB, VmHWM {ap['VmHWM']:.1f} MiB; CPU {c:.2f}s")
        p(f"  all replicas: applied VmRSS "
          f"{sum(x['VmRSS'] for x in r['rss_applied_by_replica']):.1f} MiB in total")
    elif r.get("rss_idle_mib"):
        i = r["rss_idle_mib"]
        p(f"  daemon memory: idle VmRSS {i['VmRSS']:.1f} MiB; applied VmRSS {a['VmRSS']:.1f} "
          f"MiB, VmHWM {a['VmHWM']:.1f} MiB (+{1024 * (a['VmRSS'] - i['VmRSS']) / n:.1f} "
          "KiB/app)")
    else:
        p(f"  daemon memory: applied VmRSS {a['VmRSS']:.1f} MiB, VmHWM {a['VmHWM']:.1f} MiB")
    f = r.get("fanout")
    if f:
        p(f"  fan-out probe ({n} deploys waiting for their rollout): {f['events_seen']} "
          f"Deployment events ({f['deployments_touched']} touched by us, "
          f"{f['lead_in_events']} in the 5 s lead-in) cost the daemon "
          f"{1000 * f['daemon_cpu_s']:.1f} ms CPU -> {f['us_per_event']:.0f} us/event")
    f = r.get("fanout_idle")
    if f:
        p(f"  fan-out probe after SUCCESS (no deploy waiting): {f['events_seen']} Deployment "
          f"events cost the daemon {1000 * f['daemon_cpu_s']:.1f} ms CPU -> "
          f"{f['us_per_event']:.0f} us/event")
    s = r.get("success")
    if s:
        p(f"  SUCCESS phase: {s['pods']} pods marked Running+Ready in {s['patch_s']:.2f}s; "
          f"{s['n_success']} of {n} apps SUCCESS")
        p(f"    per app, Deployment available -> status SUCCESS: "
          f"{fmt_summary(s['available_to_success_s'])}")
        p(f"      of which available -> daemon logs 'Saving result SUCCESS': "
          f"{fmt_summary(s['available_to_daemon_saving_s'])}")
        p(f"      and that log line -> SUCCESS seen on the watch      : "
          f"{fmt_summary(s['daemon_saving_to_status_seen_s'])}")
        if s["patch_start_to_last_success_s"] is not None:
            p(f"    first pod patch -> last Deployment available: "
              f"{s['patch_start_to_last_available_s']:.2f}s, -> last SUCCESS: "
              f"{s['patch_start_to_last_success_s']:.2f}s")
        if s["n_never_available"] or s["n_available_no_success"]:
            p(f"    never available: {s['n_never_available']} {s['never_available']}; "
              f"available without SUCCESS: {s['n_available_no_success']} "
              f"{s['available_no_success']}")
        p(f"    daemon CPU {s['daemon_cpu_s']:.2f}s; memory {s['rss_mib']}")
        fmt_api(p, s["api"], n, "    ")
        p(f"    requests per deploy all the way to SUCCESS: {to_success(r):.2f}")
    rs = r.get("restart")
    if rs:
        p(f"  RESTART with all {n} apps SUCCESS (the case `restart`):")
        if rs.get("skipped") or rs.get("api") is None:
            p(f"    skipped: {rs.get('skipped')}")
        else:
            p(f"    old daemon stopped (SIGTERM) in {rs['old_stop_s']:.2f}s, exit code "
              f"{rs['old_exit']}")
            ready = rs["ready_s"]
            p(f"    new daemon: /healthz 200 after {rs['healthy_s']:.2f}s; READY after "
              + (f"{ready:.2f}s" if ready is not None else "NOT REACHED")
              + " (its last API request before 5 s without any, nothing queued or in progress;"
              " 0.2 s polling)")
            fmt_api(p, rs["api"], n, "    ", unit="app")
            p(f"    per-app rows (>= 1 request per 2 apps): {rs['per_app_rows'] or 'none'}")
            p(f"    Deployment / status events meanwhile: {rs['deployment_events']} / "
              f"{rs['status_events']}; memory when ready {rs.get('rss_ready_mib')}; "
              f"CPU {rs['daemon_cpu_s']:.2f}s")
    la = r.get("log_all", {})
    p(f"  daemon log: {la.get('levels') or 'no WARN/ERROR lines'}; exit code "
      f"{r.get('daemon_exit')}")
    for d in la.get("distinct", [])[:10]:
        p(f"    {d['count']:5d} x {d['example']}")
    if r.get("ns_delete_s") is not None:
        p(f"  namespace deleted in {r['ns_delete_s']:.1f}s")


def to_success(r):
    """The daemon's API requests per deploy from the create to SUCCESS."""
    return r["api"]["per_deploy"] + r["success"]["api"]["per_deploy"]


def ceiling_for(r, ceilings):
    """The mean applies/s of the ceilings measured right before and right after r's size."""
    around = [c["applies_per_s"] for c in ceilings
              if c.get("applies_per_s") and c["position"] in (r["size_index"],
                                                              r["size_index"] + 1)]
    return statistics.mean(around) if around else None


# Issue 12's goals.
GOAL_APPLIED_S_PER_1000 = 15.0
GOAL_CEILING_SHARE = 0.80
GOAL_FLAT_COST = 1.10      # requests and CPU per deploy, larger N / first N
GOAL_FLAT_THROUGHPUT = 0.80  # deploys/s, larger N / first N
GOAL_REQUESTS_TO_SUCCESS = 10.0
GOAL_PEAK_RSS_MIB = 24.0
GOAL_IDLE_RSS_MIB = 12.0
GOAL_READY_S = 3.0
# "No per-app request at all": a restart may send a constant few (lists, watches, CRDs).
GOAL_RESTART_REQUESTS = 20


def goals(results, ceilings):
    """Rows (figure, value, goal, met: True/False/None for information only)."""
    rows = []

    def row(figure, value, goal, met):
        rows.append((figure, value, goal, met))

    for r in results:
        n, case = r["n"], r["case"]
        if r.get("applied_s") is None:
            row(f"{case} N={n}: all applied", "NOT REACHED", "", False)
            continue
        if case in ("at-once", "pre-existing"):
            limit = GOAL_APPLIED_S_PER_1000 * n / 1000
            row(f"{case} N={n}: all applied", f"{r['applied_s']:.1f} s "
                f"({r['deploys_per_s']:.0f}/s)", f"<= {limit:.1f} s (15 s per 1000)",
                r["applied_s"] <= limit)
            ceiling = ceiling_for(r, ceilings)
            if ceiling:
                share = r["daemon_apply_per_s"] / ceiling
                row(f"{case} N={n}: daemon APPLY/s / SSA ceiling",
                    f"{r['daemon_apply_per_s']:.0f} / {ceiling:.0f} = {100 * share:.0f} %",
                    f">= {100 * GOAL_CEILING_SHARE:.0f} %", share >= GOAL_CEILING_SHARE)
        if case == "at-once":
            if r.get("success") and r["success"]["api"]:
                v = to_success(r)
                row(f"at-once N={n}: API requests per deploy to SUCCESS", f"{v:.2f}",
                    f"<= {GOAL_REQUESTS_TO_SUCCESS:.0f}", v <= GOAL_REQUESTS_TO_SUCCESS)
            v = r["rss_applied_mib"]["VmHWM"]
            row(f"at-once N={n}: peak RSS, {n} deploys waiting", f"{v:.1f} MiB",
                f"<= {GOAL_PEAK_RSS_MIB:.0f} MiB", v <= GOAL_PEAK_RSS_MIB)
            v = r["rss_idle_mib"]["VmRSS"]
            row(f"at-once N={n}: idle RSS, no app yet", f"{v:.1f} MiB",
                f"<= {GOAL_IDLE_RSS_MIB:.0f} MiB", v <= GOAL_IDLE_RSS_MIB)
            rs = r.get("restart")
            if rs and rs.get("api"):
                v = rs["ready_s"]
                row(f"restart N={n}: ready", "NOT REACHED" if v is None else f"{v:.2f} s",
                    f"<= {GOAL_READY_S:.0f} s", v is not None and v <= GOAL_READY_S)
                total = rs["api"]["daemon_requests"]
                row(f"restart N={n}: API requests in the first {rs['api']['window_s']:.0f} s",
                    f"{total:.0f} ({total / n:.3f}/app)",
                    f"no per-app request (<= {GOAL_RESTART_REQUESTS} in all)",
                    total <= GOAL_RESTART_REQUESTS and not rs["per_app_rows"])
                if rs.get("rss_ready_mib"):
                    v = rs["rss_ready_mib"]["VmRSS"]
                    row(f"restart N={n}: idle RSS, {n} apps all SUCCESS", f"{v:.1f} MiB",
                        f"<= {GOAL_IDLE_RSS_MIB:.0f} MiB", v <= GOAL_IDLE_RSS_MIB)
            elif rs:
                row(f"restart N={n}: ready", "skipped", f"<= {GOAL_READY_S:.0f} s", False)
        if case == "replicas":
            one = next((x for x in results if x["case"] == "at-once" and x["n"] == n
                        and x.get("deploys_per_s")), None)
            rss = ", ".join(f"{x['VmHWM']:.1f}" for x in r["rss_applied_by_replica"])
            row(f"replicas N={n}: deploys/s, {r['replicas']} replicas vs 1",
                f"{r['deploys_per_s']:.1f} vs "
                + (f"{one['deploys_per_s']:.1f} (x{r['deploys_per_s'] / one['deploys_per_s']:.2f})"
                   if one else "n/a"), "(report)", None)
            row(f"replicas N={n}: peak RSS per replica", f"{rss} MiB"
                + (f" (1 replica: {one['rss_applied_mib']['VmHWM']:.1f})" if one else ""),
                "(report)", None)

    base = next((r for r in results if r["case"] == "at-once" and r.get("applied_s")), None)
    for r in results:
        if r is base or base is None or r["case"] != "at-once" or not r.get("applied_s"):
            continue
        if r["n"] <= base["n"]:
            continue
        label = f"flat cost N={r['n']} vs N={base['n']}"
        a, b = base["api"]["per_deploy"], r["api"]["per_deploy"]
        row(f"{label}: requests/deploy", f"{a:.2f} -> {b:.2f} (x{b / a:.2f})",
            f"<= x{GOAL_FLAT_COST:.2f}", b / a <= GOAL_FLAT_COST)
        a, b = (1000 * base["cpu_s"]["daemon"] / base["n"], 1000 * r["cpu_s"]["daemon"] / r["n"])
        row(f"{label}: daemon CPU ms/deploy", f"{a:.2f} -> {b:.2f} (x{b / a:.2f})",
            f"<= x{GOAL_FLAT_COST:.2f}", b / a <= GOAL_FLAT_COST)
        a, b = base["deploys_per_s"], r["deploys_per_s"]
        row(f"{label}: deploys/s", f"{a:.1f} -> {b:.1f} (x{b / a:.2f})",
            f">= x{GOAL_FLAT_THROUGHPUT:.2f}", b / a >= GOAL_FLAT_THROUGHPUT)
    return rows


def report(results, ceilings, meta):
    out = []
    p = out.append
    p("")
    p("=" * 100)
    p(f"fiaas-deploy-daemon load benchmark  {meta['when']}  ({meta['nproc']} CPUs; daemon built "
      f"{meta['binary_mtime']}, git {meta['git']})")
    p(f"cases {meta['args']['cases']}, sizes {meta['args']['sizes']}")
    p("Caveat: etcd, kube-apiserver, kube-controller-manager, the daemon and this script share one")
    p("small machine (with whatever else runs on it); figures are indicative, ratios measured in")
    p("the same run less so.")
    p("=" * 100)
    if ceilings:
        p("\nServer-side-apply ceiling (this script, "
          f"{ceilings[0].get('connections')} processes with one keep-alive connection each, "
          "applying the daemon's objects of new apps: 2 ApplicationStatus applies + the "
          "rendered Service, Ingress, Deployment, HPA, PDB):")
        for c in ceilings:
            if c.get("error"):
                p(f"  {c['label']}: ERROR {c['error']}")
                continue
            cpu = c.get("cpu_s", {})
            p(f"  {c['label']:>22}: {c['applies_per_s']:.0f} applies/s = "
              f"{c['deploys_per_s']:.1f} deploys/s over {c['seconds']:.0f}s; latency "
              f"{fmt_summary(c['latency_s'])}; apiserver CPU "
              f"{1000 * cpu.get('apiserver', 0) / max(1, c['applies']):.2f} ms/apply, this "
              f"script's {1000 * c['client_cpu_s'] / max(1, c['applies']):.2f} ms/apply; "
              f"errors {c['errors'] or 'none'}; load {c['loadavg_start']}")
    for r in results:
        try:
            report_case(p, r)
        except (KeyError, TypeError) as e:
            p(f"  (incomplete result: missing {e})")
    try:
        rows = goals(results, ceilings)
    except (KeyError, TypeError, ZeroDivisionError) as e:
        rows = []
        p(f"\n(goals incomplete: {type(e).__name__} {e})")
    if rows:
        p("\nGoals (issue 12; replicas: issue 14)")
        w = max(len(f) for f, _, _, _ in rows)
        v = max(len(x) for _, x, _, _ in rows)
        g = max(len(x) for _, _, x, _ in rows)
        p(f"  {'figure':{w}}  {'value':{v}}  {'goal':{g}}  met")
        for figure, value, goal, met in rows:
            mark = "-" if met is None else ("MET" if met else "MISSED")
            p(f"  {figure:{w}}  {value:{v}}  {goal:{g}}  {mark}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000",
                    help="comma-separated app counts, each in its own namespaces "
                         "(default 100,1000)")
    ap.add_argument("--cases", default="at-once",
                    help="comma-separated, run per size in this order: at-once, pre-existing, "
                         "restart (after at-once and its SUCCESS phase), replicas "
                         "(default at-once)")
    ap.add_argument("--success-sizes", default=None,
                    help="sizes for which the at-once case plays the kubelet and measures SUCCESS "
                         "latency and the requests up to SUCCESS (default: the sizes up to 1000; "
                         "'' for none; `restart` always does it)")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    ap.add_argument("--daemon", default=os.path.join(target, "release", "fiaas-deploy-daemon"),
                    help="daemon binary (copied to the output dir first, so that a concurrent "
                         "rebuild cannot swap it mid-run)")
    ap.add_argument("--fiaas", default=None,
                    help="the `fiaas` CLI that renders the SSA ceiling's objects (default: next "
                         "to --daemon)")
    ap.add_argument("--max-concurrent-deploys", type=int, default=50)
    ap.add_argument("--create-workers", type=int, default=16,
                    help="parallel connections for creating Applications and touching "
                         "Deployments (fan-out probe)")
    ap.add_argument("--kubelet-processes", type=int, default=8,
                    help="processes that patch pod statuses in the SUCCESS phase")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds to wait for all applied, and again for all SUCCESS")
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds between the daemon answering /healthz and the measurements")
    ap.add_argument("--background-window", type=float, default=5,
                    help="seconds to sample other clients' traffic before each run")
    ap.add_argument("--fanout-probe", type=int, default=100,
                    help="touch this many Deployments after the apply to measure the daemon's CPU "
                         "per Deployment event (0 to skip)")
    ap.add_argument("--ceiling-seconds", type=float, default=10,
                    help="length of each SSA ceiling measurement (0 to skip them)")
    ap.add_argument("--ceiling-connections", type=int, default=8,
                    help="processes (one keep-alive connection each) of the SSA ceiling")
    ap.add_argument("--restart-window", type=float, default=10,
                    help="restart: count the new daemon's requests for at least this many "
                         "seconds after its start")
    ap.add_argument("--restart-quiet", type=float, default=5,
                    help="restart: seconds without any request (and nothing queued) that make "
                         "the daemon ready")
    ap.add_argument("--restart-limit", type=float, default=120,
                    help="restart: give up waiting for ready after this many seconds")
    ap.add_argument("--replicas", type=int, default=3, help="replicas: how many daemons")
    ap.add_argument("--shards", type=int, default=12, help="replicas: their --shards")
    ap.add_argument("--as-admin", action="store_true",
                    help="run the daemon with the inherited kubeconfig identity instead of its own "
                         "ServiceAccount (then the request count is JSON requests minus ours, "
                         "which includes other clients of a shared cluster)")
    ap.add_argument("--debug-count", action="store_true",
                    help="run the daemon with --debug and also count its kube-client requests "
                         "from the log (slows the daemon; not for timing figures)")
    ap.add_argument("--keep", action="store_true", help="keep the namespaces")
    ap.add_argument("--out", default=None, help="output dir (default target/load-bench/<time>)")
    args = ap.parse_args()

    if not os.environ.get("KUBECONFIG"):
        subprocess.run([os.path.join(REPO, "tests", "cluster", "up")], check=True,
                       stdout=subprocess.DEVNULL)
        os.environ["KUBECONFIG"] = os.path.join(REPO, "target", "test-cluster", "kubeconfig")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        sys.exit(f"unknown cases {sorted(unknown)}; known: {', '.join(CASES)}")
    if args.success_sizes is None:
        success_sizes = {n for n in sizes if n <= 1000}
    else:
        success_sizes = {int(s) for s in args.success_sizes.split(",") if s}
    when = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.abspath(args.out or os.path.join(REPO, "target", "load-bench", when))
    os.makedirs(outdir, exist_ok=True)
    if not os.path.exists(args.daemon):
        sys.exit(f"no daemon binary at {args.daemon}; build it with "
                 "`cargo build --release -p fiaas-daemon`")
    renderer = args.fiaas or os.path.join(os.path.dirname(args.daemon), "fiaas")
    if args.ceiling_seconds and not os.path.exists(renderer):
        sys.exit(f"no fiaas CLI at {renderer} for the SSA ceiling; build it with "
                 "`cargo build --release -p fiaas-cli`, or pass --ceiling-seconds 0")
    binary = os.path.join(outdir, "fiaas-deploy-daemon")
    shutil.copy2(args.daemon, binary)
    git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    meta = {"when": when, "nproc": os.cpu_count(), "git": git + ("+dirty" if dirty else ""),
            "binary_mtime": datetime.datetime.fromtimestamp(
                os.path.getmtime(args.daemon)).strftime("%Y-%m-%d %H:%M"),
            "args": vars(args)}
    kube = Kube()
    log(f"output in {outdir}")
    results, ceilings = [], []
    templates = ceiling_templates(kube, renderer) if args.ceiling_seconds else None

    def ceiling(position, label):
        if templates:
            c = ssa_ceiling(kube, args, templates, label)
            c["position"] = position
            ceilings.append(c)

    try:
        for i, n in enumerate(sizes):
            ceiling(i, f"before N={n}")
            if "at-once" in cases or "restart" in cases:
                results.append(run_at_once(kube, args, binary, n, outdir,
                                           n in success_sizes, "restart" in cases))
            if "pre-existing" in cases:
                results.append(run_pre_existing(kube, args, binary, n, outdir))
            if "replicas" in cases:
                results.append(run_replicas(kube, args, binary, n, outdir))
            for r in results:
                r.setdefault("size_index", i)
        ceiling(len(sizes), f"after N={sizes[-1]}" if sizes else "after")
    finally:
        with open(os.path.join(outdir, "results.json"), "w") as f:
            json.dump({"meta": meta, "ceilings": ceilings, "results": results}, f, indent=2,
                      default=str)
        os.remove(binary)  # 24 MB; the report names the build it measured
        text = report(results, ceilings, meta)
        with open(os.path.join(outdir, "report.txt"), "w") as f:
            f.write(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
