#!/usr/bin/env python3
"""Load benchmark of fiaas-deploy-daemon against the real test cluster (tests/cluster).

For each N in --sizes (default 100 and 1000), in a fresh namespace with its own daemon:

  1. creates N Applications at once (parallel POSTs) and measures the time until every app has
     its Deployment and an ApplicationStatus that reached RUNNING ("applied"), plus the time until
     the daemon's own `deployer_time_to_deploy` histogram counts N finished applies;
  2. counts the API requests made while doing so (kube-apiserver `apiserver_request_total`
     delta, see "API request count" in README.md for the attribution rules);
  3. reads the daemon's VmRSS / VmHWM (and CPU time) once the apps are applied;
  4. for the sizes in --success-sizes (default 100): plays the kubelet (marks every Pod
     Running + Ready through the pods/status subresource) and measures, per app, the time from
     its Deployment becoming available to its ApplicationStatus SUCCESS.

Standard library only (plus kubectl to read the kubeconfig). See README.md next to this file.
"""

import argparse
import collections
import concurrent.futures
import datetime
import json
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
import http.client
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
# Results that mean "the deploy got at least as far as RUNNING".
PAST_RUNNING = {"RUNNING", "SUCCESS", "FAILED"}


def log(msg):
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def summary(values):
    if not values:
        return None
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "p90": pct(values, 90),
        "max": max(values),
    }


def fmt_summary(s, unit="s"):
    if not s:
        return "n/a"
    return (f"median {s['median']:.3f}{unit}, p90 {s['p90']:.3f}{unit}, "
            f"max {s['max']:.3f}{unit} (min {s['min']:.3f}{unit}, n={s['n']})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------
# A tiny Kubernetes client: one keep-alive HTTPS connection per thread, bearer token auth, and a
# count of every request it makes keyed like apiserver_request_total, so they can be subtracted.
# ------------------------------------------------------------------------------------------------

class Kube:
    def __init__(self):
        raw = subprocess.run(["kubectl", "config", "view", "--raw", "--minify", "-o", "json"],
                             check=True, capture_output=True, text=True).stdout
        cfg = json.loads(raw)
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        if "token" not in user:
            sys.exit("this benchmark needs a bearer-token kubeconfig (the test cluster's default)")
        self.token = user["token"]
        if "certificate-authority-data" in cluster:
            import base64
            f = tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False)
            f.write(base64.b64decode(cluster["certificate-authority-data"]))
            f.close()
            cafile = f.name
        else:
            cafile = cluster["certificate-authority"]
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.local = threading.local()
        self.lock = threading.Lock()
        # (VERB, resource, subresource) -> count, as the apiserver would label our requests.
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
        keep-alive connection."""
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

    def get_text(self, path):
        conn = self._conn()
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        resp = conn.getresponse()
        return resp.read().decode()

    def watch(self, path, resource, resource_version, on_event):
        """Start a watch in a thread; returns a stop function. Events go to on_event(type, obj,
        monotonic_time). The watch is re-opened from the last resourceVersion if it ends."""
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
                        raise RuntimeError(f"watch {q}: HTTP {resp.status}")
                    while not state["stop"]:
                        line = resp.readline()
                        if not line:
                            break
                        now = time.monotonic()
                        ev = json.loads(line)
                        obj = ev.get("object", {})
                        rv = obj.get("metadata", {}).get("resourceVersion")
                        if ev.get("type") == "ERROR":
                            raise RuntimeError(f"watch {path}: {obj.get('message')}")
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

    def request_totals(self):
        """apiserver_request_total as {(verb, group, resource, subresource, code, contentType):
        value}."""
        out = collections.Counter()
        for line in self.get_text("/metrics").splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_part, value = line.rsplit(" ", 1)
            labels = dict(self.LABEL_RE.findall(labels_part))
            key = (labels.get("verb", ""), labels.get("group", ""), labels.get("resource", ""),
                   labels.get("subresource", ""), labels.get("code", ""),
                   labels.get("contentType", ""))
            out[key] += float(value)
        return out


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


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


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
    def __init__(self, binary, namespace, max_concurrent, logfile, debug):
        self.port = free_port()
        env = dict(os.environ, NAMESPACE=namespace)
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


def scan_log(path, start=0, end=None):
    """Counts of WARN/ERROR lines, a few samples of each distinct message, and (with --debug) the
    number of kube-client 'requesting' lines, in bytes [start, end) of the daemon log."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    levels = collections.Counter()
    samples = collections.OrderedDict()
    requesting = 0
    for line in data.decode(errors="replace").splitlines():
        m = re.match(r"\[[^|]*\|\s*(\w+)\]\s*(.*)", line)
        if not m:
            continue
        level, msg = m.groups()
        if level == "DEBUG" and msg.startswith("requesting "):
            requesting += 1
        if level in ("WARNING", "WARN", "ERROR", "CRITICAL"):
            levels[level] += 1
            # Group messages that differ only by app name / numbers.
            shape = re.sub(r"\d+", "#", msg)[:160]
            if shape not in samples:
                samples[shape] = [0, line[:400]]
            samples[shape][0] += 1
    return {"levels": dict(levels), "requesting": requesting,
            "distinct": [{"count": c, "example": ex} for c, ex in samples.values()]}


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
    """What the watches have seen, with monotonic timestamps."""

    def __init__(self):
        self.lock = threading.Lock()
        self.deploy_seen = {}        # app -> first time its Deployment was seen
        self.deploy_available = {}   # app -> first time available == spec.replicas (current gen)
        self.replicas = {}           # app -> spec.replicas
        self.status_first = collections.defaultdict(dict)  # app -> {result: first time seen}
        self.status_last = {}        # app -> last result

    def on_deployment(self, typ, obj, now):
        if typ == "DELETED":
            return
        name = obj["metadata"]["name"]
        spec, st = obj.get("spec", {}), obj.get("status", {})
        want = spec.get("replicas")
        with self.lock:
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
        if not app or not result:
            return
        with self.lock:
            self.status_first[app].setdefault(result, now)
            self.status_last[app] = result

    def reached(self, app, results):
        firsts = self.status_first.get(app, {})
        times = [t for r, t in firsts.items() if r in results]
        return min(times) if times else None


def attribute(before, after, mine):
    """Split the apiserver request delta. Returns (json_by_key, daemon_total, protobuf_total).

    kube-controller-manager talks protobuf to the apiserver for built-in kinds; the daemon (kube-rs),
    kubectl and this script talk JSON. So the JSON-typed delta minus this script's own requests is
    the daemon's (plus whatever other JSON clients of the shared cluster did meanwhile)."""
    delta = collections.Counter()
    for k, v in after.items():
        d = v - before.get(k, 0)
        if d > 0:
            delta[k] = d
    json_delta = collections.Counter()
    proto_total = 0
    for (verb, group, resource, sub, code, ctype), d in delta.items():
        if "protobuf" in ctype:
            proto_total += d
        else:
            json_delta[(verb, group, resource, sub, code)] += d
    # Subtract our own requests (matched on verb/resource/subresource, any group/code).
    remaining = collections.Counter(mine)
    for key in sorted(json_delta):
        verb, _, resource, sub, _ = key
        take = min(json_delta[key], remaining[(verb, resource, sub)])
        json_delta[key] -= take
        remaining[(verb, resource, sub)] -= take
    json_delta = +json_delta
    unmatched = {f"{v} {r}{'/' + s if s else ''}": n for (v, r, s), n in remaining.items() if n > 0}
    return json_delta, sum(json_delta.values()), proto_total, unmatched


def fmt_breakdown(json_delta, n):
    rows = collections.Counter()
    for (verb, group, resource, sub, code), d in json_delta.items():
        res = f"{resource}{'/' + sub if sub else ''}{'.' + group if group else ''}"
        rows[(res, verb, code)] += d
    lines = []
    for (res, verb, code), d in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"      {verb:7} {res:55} {code:4} {int(d):7d}  ({d / n:.2f}/deploy)")
    return "\n".join(lines)


def create_all(kube, ns, n, workers):
    """POST n Applications with `workers` parallel keep-alive connections; returns
    {app: monotonic time the create returned}."""
    created = {}
    path = f"/apis/{API_GROUP}/namespaces/{ns}/applications"

    def one(i):
        kube.request("POST", path, application(ns, i), resource="applications")
        return f"app-{i}", time.monotonic()

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for app, t in pool.map(one, range(n)):
            created[app] = t
    return created


def play_kubelet(kube, ns, tracker, workers, timeout):
    """Wait until the ReplicaSet controller has created every expected Pod, then mark them all
    Running and Ready through pods/status. Returns (pod count, patch start, patch end)."""
    with tracker.lock:
        expected = sum(r or 0 for r in tracker.replicas.values())
    deadline = time.monotonic() + timeout
    while True:
        _, doc = kube.request("GET", f"/api/v1/namespaces/{ns}/pods", verb="LIST",
                              resource="pods")
        pods = [p["metadata"]["name"] for p in doc["items"]]
        if len(pods) >= expected:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(pods)} of {expected} pods after {timeout}s")
        time.sleep(1)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [{"type": t, "status": "True", "lastTransitionTime": stamp}
                  for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
    body = {"status": {"phase": "Running", "startTime": stamp, "conditions": conditions,
                       "podIP": "10.244.0.1"}}

    def one(name):
        kube.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", body,
                     content_type="application/merge-patch+json", resource="pods",
                     subresource="status")

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, pods))
    return len(pods), start, time.monotonic()


def delete_namespace(kube, ns, wait, timeout=600):
    kube.request("DELETE", f"/api/v1/namespaces/{ns}", resource="namespaces", ok=(200, 202, 404))
    if not wait:
        return None
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        status, _ = kube.request("GET", f"/api/v1/namespaces/{ns}", resource="namespaces",
                                 ok=None)
        if status == 404:
            return time.monotonic() - t0
        time.sleep(1)
    log(f"namespace {ns} still terminating after {timeout}s; not waiting any longer")
    return None


def run_size(kube, args, binary, n, outdir, success):
    ns = f"fiaas-load-{n}-{int(time.time())}"
    r = {"n": n, "namespace": ns, "loadavg_start": loadavg()}
    log(f"=== N={n}: namespace {ns} ===")
    kube.request("POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                 resource="namespaces")
    logfile = os.path.join(outdir, f"daemon-{n}.log")
    daemon = Daemon(binary, ns, args.max_concurrent_deploys, logfile, args.debug_count)
    tracker = Tracker()
    stops = []
    try:
        daemon.wait_healthy()
        time.sleep(args.settle)  # let the daemon's watches list and settle
        r["rss_idle_mib"] = proc_status(daemon.pid)

        # Our own watches, opened before the "before" snapshot and closed after the last one,
        # so they never show up in the apiserver deltas.
        for path, resource, handler in (
                (f"/apis/apps/v1/namespaces/{ns}/deployments", "deployments",
                 tracker.on_deployment),
                (f"/apis/{API_GROUP}/namespaces/{ns}/application-statuses",
                 "application-statuses", tracker.on_status)):
            _, doc = kube.request("GET", path, verb="LIST", resource=resource)
            stops.append(kube.watch(path, resource, doc["metadata"]["resourceVersion"], handler))

        # Background: JSON-typed requests of other clients while the daemon idles.
        kube.mine.clear()
        b0 = kube.request_totals()
        time.sleep(args.background_window)
        b1 = kube.request_totals()
        _, bg_total, _, _ = attribute(b0, b1, kube.mine)
        r["background_json_requests_per_s"] = bg_total / args.background_window

        # --- phase 1-3: create N at once, wait until applied ---
        pids = cluster_pids()
        cpu0 = {c: cpu_seconds(p) for c, p in pids.items()}
        cpu0["daemon"] = cpu_seconds(daemon.pid)
        log_start = os.path.getsize(logfile)
        kube.mine.clear()
        before = kube.request_totals()
        t0 = time.monotonic()
        created = create_all(kube, ns, n, args.create_workers)
        t_created = time.monotonic()
        log(f"created {n} Applications in {t_created - t0:.2f}s")

        deadline = t0 + args.timeout
        last_report = 0.0
        t_applied = None
        while time.monotonic() < deadline:
            with tracker.lock:
                n_deploy = len(tracker.deploy_seen)
                n_running = sum(1 for a in created if tracker.reached(a, PAST_RUNNING))
                n_failed = sum(1 for a in created if "FAILED" in tracker.status_first.get(a, {}))
            if n_deploy >= n and n_running >= n and t_applied is None:
                with tracker.lock:
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
                    f"{n_running}/{n} statuses >= RUNNING, {n_failed} FAILED")
            time.sleep(0.05)
        t_apply_done = time.monotonic()
        applies_done = daemon.metric("deployer_time_to_deploy_count")
        after = kube.request_totals()
        log_end = os.path.getsize(logfile)
        cpu1 = {c: cpu_seconds(p) for c, p in pids.items()}
        cpu1["daemon"] = cpu_seconds(daemon.pid)
        r["rss_applied_mib"] = proc_status(daemon.pid)
        r["loadavg_applied"] = loadavg()

        r["create_s"] = t_created - t0
        with tracker.lock:
            missing_deploy = sorted(a for a in created if a not in tracker.deploy_seen)
            not_running = sorted(a for a in created if not tracker.reached(a, PAST_RUNNING))
            failed = sorted(a for a in created if "FAILED" in tracker.status_first.get(a, {}))
            per_app_deploy = [tracker.deploy_seen[a] - created[a] for a in created
                              if a in tracker.deploy_seen]
            per_app_running = [tracker.reached(a, PAST_RUNNING) - created[a] for a in created
                               if tracker.reached(a, PAST_RUNNING)]
        r["stuck"] = {"no_deployment": missing_deploy[:20], "no_running": not_running[:20],
                      "n_no_deployment": len(missing_deploy), "n_no_running": len(not_running),
                      "failed": failed[:20], "n_failed": len(failed)}
        if t_applied is None:
            log(f"NOT all applied within {args.timeout}s: {len(missing_deploy)} without "
                f"Deployment, {len(not_running)} without RUNNING")
        r["applied_s"] = None if t_applied is None else t_applied - t0
        r["apply_done_s"] = t_apply_done - t0 if applies_done >= n else None
        r["daemon_applies_counted"] = applies_done
        if r["applied_s"]:
            r["deploys_per_s"] = n / r["applied_s"]
            r["ms_per_deploy"] = 1000 * r["applied_s"] / n
        r["per_app_create_to_deployment_s"] = summary(per_app_deploy)
        r["per_app_create_to_running_s"] = summary(per_app_running)
        r["cpu_s"] = {c: (cpu1[c] - cpu0[c]) if cpu0.get(c) is not None and cpu1.get(c)
                      is not None else None for c in cpu1}
        json_delta, daemon_total, proto_total, unmatched = attribute(before, after, kube.mine)
        r["api"] = {"daemon_requests": daemon_total, "per_deploy": daemon_total / n,
                    "protobuf_requests": proto_total, "unmatched_own": unmatched,
                    "window_s": t_apply_done - t0,
                    "breakdown": fmt_breakdown(json_delta, n)}
        r["log_to_applied"] = scan_log(logfile, log_start, log_end)
        if args.debug_count:
            r["api"]["debug_log_requesting"] = r["log_to_applied"]["requesting"]
        log(f"N={n}: applied in {r['applied_s']}s; {daemon_total:.0f} daemon API requests "
            f"({daemon_total / n:.2f}/deploy); RSS {r['rss_applied_mib']}")

        # --- phase 4: SUCCESS latency ---
        if success:
            log(f"playing the kubelet for {n} apps")
            kube.mine.clear()
            before_s = kube.request_totals()
            cpu0s = cpu_seconds(daemon.pid)
            n_pods, p0, p1 = play_kubelet(kube, ns, tracker, args.create_workers, 180)
            log(f"marked {n_pods} pods Running+Ready in {p1 - p0:.2f}s")
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                with tracker.lock:
                    done = sum(1 for a in created if tracker.reached(a, {"SUCCESS", "FAILED"}))
                if done >= n:
                    break
                time.sleep(0.05)
            time.sleep(1)  # let the final status writes / retention lists land
            after_s = kube.request_totals()
            with tracker.lock:
                lat, never_available, no_success = [], [], []
                for a in created:
                    av = tracker.deploy_available.get(a)
                    ok = tracker.status_first.get(a, {}).get("SUCCESS")
                    if av is None:
                        never_available.append(a)
                    elif ok is None:
                        no_success.append(a)
                    else:
                        lat.append(ok - av)
                t_all_success = max((tracker.status_first[a].get("SUCCESS", 0) for a in created),
                                    default=0)
                first_available = min(tracker.deploy_available.values(), default=None)
            json_s, daemon_s, _, _ = attribute(before_s, after_s, kube.mine)
            r["success"] = {
                "pods": n_pods,
                "patch_s": p1 - p0,
                "available_to_success_s": summary(lat),
                "negative_latencies": sum(1 for x in lat if x < 0),
                "patch_start_to_all_success_s": (t_all_success - p0) if not no_success else None,
                "patch_start_to_first_available_s": (first_available - p0)
                if first_available else None,
                "never_available": never_available[:20], "n_never_available": len(never_available),
                "available_but_no_success": no_success[:20], "n_no_success": len(no_success),
                "daemon_requests": daemon_s, "daemon_requests_per_deploy": daemon_s / n,
                "breakdown": fmt_breakdown(json_s, n),
                "daemon_cpu_s": cpu_seconds(daemon.pid) - cpu0s,
                "rss_mib": proc_status(daemon.pid),
            }
            log(f"SUCCESS latency (Deployment available -> SUCCESS): "
                f"{fmt_summary(r['success']['available_to_success_s'])}")
    finally:
        for stop in stops:
            stop()
        r["daemon_exit"] = daemon.stop()
        r["log_all"] = scan_log(logfile)
        if not args.keep:
            log(f"deleting namespace {ns}")
            r["ns_delete_s"] = delete_namespace(kube, ns, wait=True)
    return r


def report(results, meta):
    out = []
    p = out.append
    p("")
    p("=" * 100)
    p(f"fiaas-deploy-daemon load benchmark  ({meta['when']}, {meta['nproc']} CPUs, "
      f"binary {meta['binary_mtime']}, git {meta['git']})")
    p("Caveat: one small shared machine running etcd + apiserver + controller-manager + daemon;")
    p("        figures are indicative, compare them within one run.")
    p("=" * 100)
    for r in results:
        n = r["n"]
        p(f"\nN = {n}  (namespace {r['namespace']})")
        p(f"  machine load average (1/5/15 min): {r.get('loadavg_start')} at start, "
          f"{r.get('loadavg_applied')} when applied")
        p(f"  create {n} Applications (parallel POST) : {r.get('create_s', 0):.2f}s")
        if r.get("applied_s") is not None:
            p(f"  all applied (Deployment + status>=RUNNING): {r['applied_s']:.2f}s after first "
              f"create  ->  {r['deploys_per_s']:.1f} deploys/s, {r['ms_per_deploy']:.1f} ms/deploy")
        else:
            p(f"  all applied: NOT REACHED (see stuck apps)")
        if r.get("apply_done_s") is not None:
            p(f"  daemon counted {int(r['daemon_applies_counted'])} finished applies at "
              f"{r['apply_done_s']:.2f}s")
        p(f"  per app, create -> Deployment exists     : "
          f"{fmt_summary(r.get('per_app_create_to_deployment_s'))}")
        p(f"  per app, create -> status RUNNING        : "
          f"{fmt_summary(r.get('per_app_create_to_running_s'))}")
        st = r.get("stuck", {})
        if st.get("n_no_deployment") or st.get("n_no_running") or st.get("n_failed"):
            p(f"  STUCK/FAILED: {st}")
        api = r.get("api", {})
        if api:
            p(f"  API requests by the daemon: {api['daemon_requests']:.0f} = "
              f"{api['per_deploy']:.2f} per deploy  (window {api['window_s']:.1f}s; "
              f"background JSON traffic {r['background_json_requests_per_s']:.2f} req/s; "
              f"KCM protobuf requests meanwhile {api['protobuf_requests']:.0f})")
            if "debug_log_requesting" in api:
                p(f"  cross-check, kube-client 'requesting' lines in --debug log: "
                  f"{api['debug_log_requesting']} ({api['debug_log_requesting'] / n:.2f}/deploy)")
            if api.get("unmatched_own"):
                p(f"  (own requests not found in the delta: {api['unmatched_own']})")
            p(api["breakdown"])
        cpu = r.get("cpu_s", {})
        if cpu:
            p("  CPU seconds during the window: " + ", ".join(
                f"{k} {v:.2f}" for k, v in cpu.items() if v is not None)
                + (f"  (daemon {1000 * cpu['daemon'] / n:.2f} ms/deploy)"
                   if cpu.get("daemon") is not None else ""))
        if "rss_applied_mib" in r:
            a, i = r["rss_applied_mib"], r["rss_idle_mib"]
            p(f"  daemon memory: idle VmRSS {i['VmRSS']:.1f} MiB; applied VmRSS "
              f"{a['VmRSS']:.1f} MiB, VmHWM {a['VmHWM']:.1f} MiB  "
              f"(+{1024 * (a['VmRSS'] - i['VmRSS']) / n:.1f} KiB/app)")
        s = r.get("success")
        if s:
            p(f"  SUCCESS phase: {s['pods']} pods marked Ready in {s['patch_s']:.2f}s")
            p(f"    per app, Deployment available -> SUCCESS: "
              f"{fmt_summary(s['available_to_success_s'])}")
            if s["negative_latencies"]:
                p(f"    ({s['negative_latencies']} apps' SUCCESS was seen before their "
                  f"available Deployment: watch delivery order)")
            if s.get("patch_start_to_all_success_s") is not None:
                p(f"    first pod patch -> last SUCCESS: {s['patch_start_to_all_success_s']:.2f}s")
            if s["n_never_available"] or s["n_no_success"]:
                p(f"    never available: {s['n_never_available']} {s['never_available']}; "
                  f"available without SUCCESS: {s['n_no_success']} "
                  f"{s['available_but_no_success']}")
            p(f"    daemon API requests RUNNING -> SUCCESS: {s['daemon_requests']:.0f} "
              f"({s['daemon_requests_per_deploy']:.2f}/deploy); daemon CPU "
              f"{s['daemon_cpu_s']:.2f}s; RSS {s['rss_mib']}")
            p(s["breakdown"])
        la = r.get("log_all", {})
        p(f"  daemon log: {la.get('levels') or 'no WARN/ERROR lines'}; exit code "
          f"{r.get('daemon_exit')}")
        for d in la.get("distinct", [])[:10]:
            p(f"    {d['count']:5d} x {d['example']}")
        if r.get("ns_delete_s") is not None:
            p(f"  namespace deleted in {r['ns_delete_s']:.1f}s")
    if len(results) >= 2 and all(r.get("applied_s") for r in results):
        a, b = results[0], results[-1]
        p(f"\nScaling {a['n']} -> {b['n']}: ms/deploy {a['ms_per_deploy']:.1f} -> "
          f"{b['ms_per_deploy']:.1f} (x{b['ms_per_deploy'] / a['ms_per_deploy']:.2f}); "
          f"API requests/deploy {a['api']['per_deploy']:.2f} -> {b['api']['per_deploy']:.2f}; "
          f"daemon CPU ms/deploy "
          f"{1000 * a['cpu_s']['daemon'] / a['n']:.2f} -> {1000 * b['cpu_s']['daemon'] / b['n']:.2f}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000",
                    help="comma-separated app counts, each run in its own namespace")
    ap.add_argument("--success-sizes", default="100",
                    help="sizes for which to play the kubelet and measure SUCCESS latency "
                         "('' for none)")
    ap.add_argument("--daemon", default=os.path.join(REPO, "target", "release",
                                                     "fiaas-deploy-daemon"),
                    help="daemon binary (copied to the output dir first, so a concurrent "
                         "rebuild cannot swap it mid-run)")
    ap.add_argument("--max-concurrent-deploys", type=int, default=50)
    ap.add_argument("--create-workers", type=int, default=16,
                    help="parallel connections for creating Applications and patching pods")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds to wait for all apps applied (and for all SUCCESS)")
    ap.add_argument("--settle", type=float, default=3, help="seconds after the daemon is healthy")
    ap.add_argument("--background-window", type=float, default=5,
                    help="seconds to sample other clients' JSON traffic before each run")
    ap.add_argument("--debug-count", action="store_true",
                    help="run the daemon with --debug and count its kube-client requests from the "
                         "log as a cross-check (slows the daemon down; not for timing figures)")
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
    outdir = args.out or os.path.join(REPO, "target", "load-bench", when)
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
        text = report(results, meta)
        with open(os.path.join(outdir, "report.txt"), "w") as f:
            f.write(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
