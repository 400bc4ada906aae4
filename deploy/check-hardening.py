"""The deployment rules yamllint and the schemas cannot express: every pod
runs non-root with RuntimeDefault seccomp and no service account token,
every container has a read-only root filesystem, no capabilities, no
privilege escalation, resource limits and /healthz + /readyz probes, and
every Deployment of the ldguard namespace (these rules apply to its
Deployments; the examples' workloads are the user's) has a NetworkPolicy and a
PodDisruptionBudget selecting it.

Usage: check-hardening.py FILE... (run by deploy/validate)."""

import sys

import yaml


def fail(problems, where, what):
    problems.append(f"{where}: {what}")


def check_deployment(doc, where, problems):
    spec = doc["spec"]["template"]["spec"]
    pod_sc = spec.get("securityContext", {})
    if pod_sc.get("runAsNonRoot") is not True:
        fail(problems, where, "spec.template.spec.securityContext.runAsNonRoot must be true")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(problems, where, "spec.template.spec.securityContext.seccompProfile.type must be RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        fail(problems, where, "spec.template.spec.automountServiceAccountToken must be false")
    for c in spec.get("containers", []):
        at = f"{where} container {c.get('name')}"
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(problems, at, "securityContext.readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(problems, at, "securityContext.allowPrivilegeEscalation must be false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(problems, at, "securityContext.capabilities.drop must be [ALL]")
        if sc.get("capabilities", {}).get("add"):
            fail(problems, at, "securityContext.capabilities.add must be empty")
        limits = c.get("resources", {}).get("limits", {})
        requests = c.get("resources", {}).get("requests", {})
        for r in ("cpu", "memory"):
            if r not in limits or r not in requests:
                fail(problems, at, f"resources.requests and resources.limits need {r}")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            fail(problems, at, "livenessProbe must GET /healthz")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            fail(problems, at, "readinessProbe must GET /readyz")


def selects(selector, labels):
    wanted = selector.get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def main(files):
    problems = []
    deployments, policies, budgets = [], [], []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for i, doc in enumerate(yaml.safe_load_all(fh)):
                if not doc:
                    continue
                where = f"{f} document {i + 1} ({doc.get('kind')} {doc['metadata'].get('name')})"
                ns = doc["metadata"].get("namespace")
                # The examples' workloads are the user's; ldguard's own are checked.
                if doc["kind"] == "Deployment" and ns == "ldguard":
                    check_deployment(doc, where, problems)
                    deployments.append((where, doc["spec"]["template"]["metadata"]["labels"]))
                elif doc["kind"] == "NetworkPolicy" and ns == "ldguard":
                    policies.append(doc["spec"]["podSelector"])
                elif doc["kind"] == "PodDisruptionBudget" and ns == "ldguard":
                    budgets.append(doc["spec"]["selector"])
    for where, labels in deployments:
        if not any(selects(p, labels) and p.get("matchLabels") for p in policies):
            fail(problems, where, "no NetworkPolicy selects its pods by label")
        if not any(selects(b, labels) for b in budgets):
            fail(problems, where, "no PodDisruptionBudget selects its pods")
    if not deployments:
        fail(problems, "deploy/kubernetes", "no Deployment in namespace ldguard")
    for p in problems:
        print(f"check-hardening: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-hardening: {len(deployments)} deployments hardened, each with a NetworkPolicy and a PodDisruptionBudget")


if __name__ == "__main__":
    main(sys.argv[1:])
