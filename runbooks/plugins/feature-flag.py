#!/usr/bin/env python3
"""medic plug-in: flip a feature flag (a kill switch) over HTTP.

Protocol (docs/plugins.md): medic writes one JSON document on stdin and
reads one JSON result on stdout: {"ok": bool, "message": str, "details": {}}.
Exit 0 for an answered request; anything else is a failure.

params:
  url:   base URL of the flag service; the flag is PUT to <url>/<flag>
  flag:  flag name
  value: the value to set (e.g. false to switch a feature off)

The flag service gets the incident id and idempotency key, so a retried
attempt is recognisable. Labels are never put into a command line: this
script only sends them as JSON fields.
"""
import json
import sys
import urllib.request


def answer(ok, message, **details):
    json.dump({"ok": ok, "message": message, "details": details}, sys.stdout)
    sys.stdout.write("\n")
    return 0


def main():
    step = json.load(sys.stdin)
    params = step.get("params") or {}
    try:
        url, flag, value = params["url"].rstrip("/"), params["flag"], params["value"]
    except KeyError as e:
        print(f"missing parameter {e}", file=sys.stderr)
        return 2
    if step.get("dry_run"):
        return answer(True, f"would set {flag} to {json.dumps(value)} at {url}", flag=flag, value=value)
    body = json.dumps({
        "value": value,
        "incident": step["incident"]["id"],
        "reason": step["incident"]["summary"],
        "target": step.get("target"),
    }).encode()
    req = urllib.request.Request(
        f"{url}/{flag}",
        data=body,
        method="PUT",
        headers={"Content-Type": "application/json", "Idempotency-Key": step["idempotency_key"]},
    )
    timeout = max(step.get("timeout_ms", 10000) / 1000 - 0.5, 0.5)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        return answer(False, f"flag service answered {e.code}", status=e.code)
    except OSError as e:
        return answer(False, f"flag service unreachable: {e}")
    return answer(True, f"set {flag} to {json.dumps(value)}", status=status, flag=flag, value=value)


if __name__ == "__main__":
    sys.exit(main())
