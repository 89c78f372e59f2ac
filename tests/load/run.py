#!/usr/bin/env python3
"""Load benchmark of fiaas-deploy-daemon against the real test cluster (tests/cluster).

For each N in --sizes (default 100 and 1000), in a fresh namespace with its own daemon:

  1. creates N Applications at once (parallel POSTs) and measures the time until every app has
     its Deployment and an ApplicationStatus that reached RUNNING ("applied"); also waits until
     the daemon's own `deployer_time_to_deploy` histogram counts N finished applies;
  2. counts the daemon's API requests over that window (apiserver metrics; see README.md);
  3. reads the daemon's VmRSS / VmHWM and CPU time once the apps are applied;
  4. probes the cost of one Deployment watch event while N deploys wait for their rollout;
  5. for the sizes in --success-sizes (default 100): plays the kubelet (marks every Pod Running
     and Ready through pods/status) and measures, per app, the time from its Deployment becoming
     available to its ApplicationStatus SUCCESS.

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

def daemon_identity(kube, ns, outdir):
    """Returns (kubeconfig path, flow schema name, cleanup function)."""
    name = f"fiaas-load-bench-{ns}"
    kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                 {"metadata": {"name": SA_NAME}}, resource="serviceaccounts")
    cleanups = []

    path = os.path.join(outdir, f"kubeconfig-{ns}")

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
            "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": ns}],
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
                                  "serviceAccount": {"name": SA_NAME, "namespace": ns}}],
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
            _, sa = kube.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/{SA_NAME}",
                                 resource="serviceaccounts")
            for ref in sa.get("secrets") or []:
                _, sec = kube.request("GET", f"/api/v1/namespaces/{ns}/secrets/{ref['name']}",
                                      resource="secrets")
                if (sec.get("data") or {}).get("token"):
                    token = base64.b64decode(sec["data"]["token"]).decode()
            if token:
                break
            time.sleep(0.2)
        if not token:
            raise RuntimeError(f"no token Secret for ServiceAccount {ns}/{SA_NAME}")
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
    def __init__(self, binary, namespace, max_concurrent, logfile, debug, kubeconfig):
        self.port = free_port()
        env = dict(os.environ, NAMESPACE=namespace)
        if kubeconfig:
            env["KUBECONFIG"] = kubeconfig
        args = [binary, *DAEMON_FLAGS, "--port", str(self.port),
                "--max-concurrent-deploys", str(max_concurrent)]
        if debug:
            args.append("--debug")
        self.logfile = logfile
        self.log = open(logfile, "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid

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
        total = 0.0
        for line in self.get("/internal-backstage/prometheus")[1].splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

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

    def __init__(self, kube, flow_schema):
        self.kube, self.flow_schema = kube, flow_schema
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
        exact = None
        if self.flow_schema:
            exact = flows.get(self.flow_schema, 0) - self.flows.get(self.flow_schema, 0)
        json_total = sum(json_rows.values())
        daemon = exact if exact is not None else json_total
        return {
            "daemon_requests": daemon,
            "per_deploy": daemon / n,
            "exact": exact is not None,
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


def wait_applied(daemon, tracker, created, t0, timeout):
    """Until every app has a Deployment and a status >= RUNNING, then (up to 30 s more) until the
    daemon counted N finished applies. Returns the time the last app became applied, or None."""
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
        if t_applied is not None and (daemon.metric("deployer_time_to_deploy_count") >= n
                                      or time.monotonic() > t_applied + 30):
            break
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {daemon.proc.returncode}")
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            log(f"  t+{last_report - t0:5.1f}s: {n_deploy}/{n} Deployments, "
                f"{n_running}/{n} statuses >= RUNNING")
        time.sleep(0.05)
    return t_applied


def run_size(kube, args, binary, n, outdir, success):
    ns = f"fiaas-load-{n}-{int(time.time())}"
    r = {"n": n, "namespace": ns, "loadavg_start": loadavg(),
         "max_concurrent_deploys": args.max_concurrent_deploys}
    log(f"=== N={n}: namespace {ns} ===")
    kube.request("POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                 resource="namespaces")
    cleanup_identity = None
    daemon = None
    stops = []
    tracker = Tracker()
    logfile = os.path.join(outdir, f"daemon-{n}.log")
    try:
        kubeconfig, flow_schema = None, None
        if not args.as_admin:
            kubeconfig, flow_schema, cleanup_identity = daemon_identity(kube, ns, outdir)
        daemon = Daemon(binary, ns, args.max_concurrent_deploys, logfile, args.debug_count,
                        kubeconfig)
        daemon.wait_healthy()
        time.sleep(args.settle)  # let the daemon's watches list and settle
        r["rss_idle_mib"] = proc_status(daemon.pid)

        # Our watches are opened before the first window and closed after the last one, so they
        # never show up in the deltas (the apiserver counts a WATCH when it ends).
        for path, resource, handler in (
                (f"/apis/apps/v1/namespaces/{ns}/deployments", "deployments",
                 tracker.on_deployment),
                (f"/apis/{API_GROUP}/namespaces/{ns}/application-statuses",
                 "application-statuses", tracker.on_status)):
            _, doc = kube.request("GET", path, verb="LIST", resource=resource)
            stops.append(kube.watch(path, resource, doc["metadata"]["resourceVersion"], handler))

        # Other clients' JSON traffic (and the idle daemon's) before we start.
        bg = Window(kube, flow_schema)
        time.sleep(args.background_window)
        bg = bg.close(1)
        r["background"] = {"json_req_per_s": bg["json_rows_total"] / bg["window_s"],
                           "daemon_idle_req_per_s": bg["daemon_requests"] / bg["window_s"]}
        if flow_schema and kube.scrape()[1].get(flow_schema, 0) == 0:
            log(f"WARNING: no request counted under flow schema {flow_schema}; the exact count "
                "is not available")

        # --- 1-3: create N at once, wait until applied ---
        pids = cluster_pids()
        cpu0 = {c: cpu_seconds(p) for c, p in pids.items()}
        cpu0["daemon"] = daemon.cpu()
        log_start = os.path.getsize(logfile)
        window = Window(kube, flow_schema)
        with tracker.lock:
            events0 = tracker.deploy_events
        t0 = time.monotonic()
        created, r["create_post_latency_s"] = create_all(kube, ns, n, args.create_workers)
        r["create_s"] = time.monotonic() - t0
        log(f"created {n} Applications in {r['create_s']:.2f}s")
        t_applied = wait_applied(daemon, tracker, created, t0, args.timeout)
        t_end = time.monotonic()
        r["applies_counted"] = daemon.metric("deployer_time_to_deploy_count")
        if r["applies_counted"]:
            r["daemon_mean_apply_s"] = (daemon.metric("deployer_time_to_deploy_sum")
                                        / r["applies_counted"])
        r["api"] = window.close(n)
        with tracker.lock:
            r["deployment_events_in_window"] = tracker.deploy_events - events0
        log_end = os.path.getsize(logfile)
        cpu1 = {c: cpu_seconds(p) for c, p in pids.items()}
        cpu1["daemon"] = daemon.cpu()
        r["rss_applied_mib"] = proc_status(daemon.pid)
        r["loadavg_applied"] = loadavg()
        r["cpu_s"] = {c: cpu1[c] - cpu0[c] for c in cpu1
                      if cpu0.get(c) is not None and cpu1.get(c) is not None}

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
        r["log_to_applied"] = scan_log(logfile, log_start, log_end)
        if args.debug_count:
            r["api"]["debug_log_requesting"] = r["log_to_applied"]["requesting"]
        log(f"N={n}: applied in {r['applied_s']}s; {r['api']['daemon_requests']:.0f} daemon API "
            f"requests ({r['api']['per_deploy']:.2f}/deploy); RSS {r['rss_applied_mib']}")

        # --- 4: cost of one Deployment event while N deploys wait for their rollouts ---
        if args.fanout_probe:
            time.sleep(2)
            r["fanout"] = fanout_probe(kube, ns, daemon, tracker, min(n, args.fanout_probe),
                                       args.create_workers)
            log(f"fan-out probe: {r['fanout']}")

        # --- 5: SUCCESS latency ---
        if success:
            with tracker.lock:
                expected = sum(tracker.replicas.get(a) or 0 for a in created)
            pods = wait_for_pods(kube, ns, expected, 300)
            log(f"playing the kubelet: marking {len(pods)} pods Running+Ready")
            log_start = os.path.getsize(logfile)
            window = Window(kube, flow_schema)
            c0 = daemon.cpu()
            p0, p1 = mark_ready(kube, ns, pods, args.kubelet_processes)
            deadline = p1 + args.timeout
            while time.monotonic() < deadline:
                with tracker.lock:
                    done = sum(1 for a in created if tracker.reached(a, {"SUCCESS", "FAILED"}))
                if done >= n:
                    break
                time.sleep(0.05)
            time.sleep(1)  # let the final writes (retention list, Event) land
            api = window.close(n)
            saved = saving_times(logfile, log_start, "SUCCESS")
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
                last_success = max((tracker.status_first[a]["SUCCESS"] for a in created
                                    if "SUCCESS" in tracker.status_first.get(a, {})), default=None)
                avail = [tracker.deploy_available[a] for a in created
                         if a in tracker.deploy_available]
            r["success"] = {
                "pods": len(pods), "patch_s": p1 - p0,
                "available_to_success_s": summary(lat),
                "available_to_daemon_saving_s": summary(detect),
                "daemon_saving_to_status_seen_s": summary(write),
                "patch_start_to_last_available_s": max(avail) - p0 if avail else None,
                "patch_start_to_last_success_s": last_success - p0 if last_success else None,
                "n_never_available": len(no_avail), "never_available": no_avail[:20],
                "n_available_no_success": len(no_success),
                "available_no_success": no_success[:20],
                "api": api, "daemon_cpu_s": daemon.cpu() - c0,
                "rss_mib": proc_status(daemon.pid),
            }
            log(f"Deployment available -> SUCCESS: {fmt_summary(summary(lat))}")
            if args.fanout_probe:  # the same probe with no deploy waiting, for the base cost
                r["fanout_idle"] = fanout_probe(kube, ns, daemon, tracker,
                                                min(n, args.fanout_probe), args.create_workers)
                log(f"fan-out probe with no deploy waiting: {r['fanout_idle']}")
    except Exception as e:  # noqa: BLE001 - recorded; the namespace is still cleaned up
        import traceback
        traceback.print_exc()
        r["error"] = f"{type(e).__name__}: {e}"
    finally:
        for stop in stops:
            stop()
        if daemon is not None:
            r["daemon_exit"] = daemon.stop()
            r["log_all"] = scan_log(logfile)
        if cleanup_identity:
            cleanup_identity()
        if not args.keep:
            log(f"deleting namespace {ns}")
            r["ns_delete_s"] = delete_namespace(kube, ns)
    return r


# ------------------------------------------------------------------------------------------------
# Report.
# ------------------------------------------------------------------------------------------------

def fmt_api(p, api, n, indent):
    src = ("exact, from the daemon's own flow schema" if api["exact"]
           else "JSON requests minus this script's own")
    p(f"{indent}API requests by the daemon: {api['daemon_requests']:.0f} = "
      f"{api['per_deploy']:.2f} per deploy ({src}; window {api['window_s']:.1f}s)")
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


def report_size(p, r):
    n = r["n"]
    p(f"\nN = {n}  (namespace {r['namespace']})")
    if r.get("error"):
        p(f"  ERROR: {r['error']}")
    p(f"  load average (1/5/15 min): {r.get('loadavg_start')} at start, "
      f"{r.get('loadavg_applied')} when applied")
    if "create_s" not in r:
        p("  (run did not get to creating Applications)")
        return
    p(f"  created {n} Applications (parallel POSTs) in {r['create_s']:.2f}s; POST latency "
      f"{fmt_summary(r.get('create_post_latency_s'))}")
    if r.get("applied_s") is not None:
        p(f"  ALL APPLIED (every Deployment exists, every status >= RUNNING): "
          f"{r['applied_s']:.2f}s after the first create")
        p(f"    = {r['deploys_per_s']:.1f} deploys/s, {r['ms_per_deploy']:.1f} ms/deploy")
    else:
        p("  ALL APPLIED: NOT REACHED")
    if r.get("apply_counted_s") is not None:
        p(f"  daemon's deployer_time_to_deploy_count reached {int(r['applies_counted'])} at "
          f"{r['apply_counted_s']:.2f}s")
    else:
        p(f"  daemon's deployer_time_to_deploy_count: only {r.get('applies_counted')}")
    p(f"  per app, create -> its Deployment exists : "
      f"{fmt_summary(r['per_app_create_to_deployment_s'])}")
    p(f"  per app, create -> its status >= RUNNING : "
      f"{fmt_summary(r['per_app_create_to_running_s'])}")
    p(f"    split: create -> INITIATED               : "
      f"{fmt_summary(r.get('per_app_create_to_initiated_s'))}")
    p(f"           INITIATED -> RUNNING (permit wait): "
      f"{fmt_summary(r.get('per_app_initiated_to_running_s'))}")
    p(f"           RUNNING -> Deployment exists      : "
      f"{fmt_summary(r.get('per_app_running_to_deployment_s'))}")
    if r.get("daemon_mean_apply_s") is not None:
        p(f"  daemon's mean apply time (deployer_time_to_deploy sum/count): "
          f"{r['daemon_mean_apply_s']:.3f}s with {r['max_concurrent_deploys']} permits")
    st = r["stuck"]
    if st["n_no_deployment"] or st["n_no_running"] or st["n_failed"]:
        p(f"  STUCK/FAILED apps: {st}")
    fmt_api(p, r["api"], n, "  ")
    bg = r["background"]
    p(f"  background before the run: other JSON clients {bg['json_req_per_s']:.2f} req/s, "
      f"idle daemon {bg['daemon_idle_req_per_s']:.2f} req/s")
    p(f"  Deployment watch events in the window (as seen by this script): "
      f"{r.get('deployment_events_in_window')}")
    cpu = r["cpu_s"]
    p("  CPU seconds in the window: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
      + (f"  -> daemon {1000 * cpu['daemon'] / n:.2f} ms/deploy" if "daemon" in cpu else ""))
    i, a = r["rss_idle_mib"], r["rss_applied_mib"]
    p(f"  daemon memory: idle VmRSS {i['VmRSS']:.1f} MiB; applied VmRSS {a['VmRSS']:.1f} MiB, "
      f"VmHWM {a['VmHWM']:.1f} MiB (+{1024 * (a['VmRSS'] - i['VmRSS']) / n:.1f} KiB/app)")
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
        p(f"  SUCCESS phase: {s['pods']} pods marked Running+Ready in {s['patch_s']:.2f}s")
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
    la = r.get("log_all", {})
    p(f"  daemon log: {la.get('levels') or 'no WARN/ERROR lines'}; exit code "
      f"{r.get('daemon_exit')}")
    for d in la.get("distinct", [])[:10]:
        p(f"    {d['count']:5d} x {d['example']}")
    if r.get("ns_delete_s") is not None:
        p(f"  namespace deleted in {r['ns_delete_s']:.1f}s")


def report(results, meta):
    out = []
    p = out.append
    p("")
    p("=" * 100)
    p(f"fiaas-deploy-daemon load benchmark  {meta['when']}  ({meta['nproc']} CPUs; daemon built "
      f"{meta['binary_mtime']}, git {meta['git']})")
    p("Caveat: etcd, kube-apiserver, kube-controller-manager, the daemon and this script share one")
    p("small machine (with whatever else runs on it); figures are indicative.")
    p("=" * 100)
    for r in results:
        try:
            report_size(p, r)
        except (KeyError, TypeError) as e:
            p(f"  (incomplete result: missing {e})")
    done = [r for r in results if r.get("applied_s")]
    if len(done) >= 2:
        a, b = done[0], done[-1]
        p(f"\nScaling {a['n']} -> {b['n']} apps: ms/deploy {a['ms_per_deploy']:.1f} -> "
          f"{b['ms_per_deploy']:.1f} (x{b['ms_per_deploy'] / a['ms_per_deploy']:.2f}); "
          f"API requests/deploy {a['api']['per_deploy']:.2f} -> {b['api']['per_deploy']:.2f}; "
          f"daemon CPU ms/deploy {1000 * a['cpu_s']['daemon'] / a['n']:.2f} -> "
          f"{1000 * b['cpu_s']['daemon'] / b['n']:.2f}; apiserver CPU ms/deploy "
          f"{1000 * a['cpu_s'].get('apiserver', 0) / a['n']:.1f} -> "
          f"{1000 * b['cpu_s'].get('apiserver', 0) / b['n']:.1f}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000",
                    help="comma-separated app counts, each in its own namespace (default 100,1000)")
    ap.add_argument("--success-sizes", default="100",
                    help="sizes for which to play the kubelet and measure SUCCESS latency "
                         "(default 100; '' for none)")
    ap.add_argument("--daemon", default=os.path.join(REPO, "target", "release",
                                                     "fiaas-deploy-daemon"),
                    help="daemon binary (copied to the output dir first, so that a concurrent "
                         "rebuild cannot swap it mid-run)")
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
    success_sizes = {int(s) for s in args.success_sizes.split(",") if s}
    when = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.abspath(args.out or os.path.join(REPO, "target", "load-bench", when))
    os.makedirs(outdir, exist_ok=True)
    if not os.path.exists(args.daemon):
        sys.exit(f"no daemon binary at {args.daemon}; build it with "
                 "`cargo build --release -p fiaas-daemon`")
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
    results = []
    try:
        for n in sizes:
            results.append(run_size(kube, args, binary, n, outdir, n in success_sizes))
    finally:
        with open(os.path.join(outdir, "results.json"), "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2, default=str)
        os.remove(binary)  # 24 MB; the report names the build it measured
        text = report(results, meta)
        with open(os.path.join(outdir, "report.txt"), "w") as f:
            f.write(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
