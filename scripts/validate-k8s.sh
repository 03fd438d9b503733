#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/k8s without a cluster:
#  1. each deploy/k8s/*.yaml but kustomization.yaml against the Kubernetes
#     JSON schemas of every version from 1.29 (the oldest these manifests
#     need: backoffLimitPerIndex, the pod-index label) to 1.37 (the newest the
#     validator bundles), strictly: an unknown field fails, and so does a kind
#     the schemas do not know (a mistyped kind or apiVersion);
#  2. the kustomization as rendered by `kubectl kustomize` or `kustomize
#     build` (generated ConfigMap, namespace, image) through the same schemas,
#     when one of them is installed; otherwise it says it skipped this;
#  3. that cameras.toml, the fit Job's completions and the scoring
#     StatefulSet's replicas agree on the number of cameras, and that the
#     pipeline cameras.toml names is in the generated ConfigMap.
# The validator is kubernetes-validate from PyPI (it bundles the schemas), in
# a virtual environment under ${XDG_CACHE_HOME:-~/.cache}/vigil-k8s-venv,
# made on first use. Schemas catch wrong names, types and missing required
# fields; not what only an API server checks (cross-field rules, immutable
# fields, admission), and not whether the pods work: nothing here has run on
# a cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=deploy/k8s
validator_version=1.37.0
versions=(1.29.0 1.30.0 1.31.0 1.32.0 1.33.0 1.34.0 1.35.0 1.36.0 1.37.0)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/vigil-k8s-venv"

if ! "$venv/bin/python" -c "import sys, kubernetes_validate.version as v; sys.exit(v.__version__ != '$validator_version')" 2>/dev/null; then
    echo "installing kubernetes-validate $validator_version into $venv"
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$validator_version"
fi

kflags=()
for v in "${versions[@]}"; do kflags+=(-k "$v"); done
range="Kubernetes ${versions[0]%.0}-${versions[-1]%.0}"
failed=0

# Runs the validator on a file (or - for standard input) and prints one line:
# ok with the resources it checked, or FAIL with every line that was not INFO
# (ERROR: not valid; WARN: a kind or apiVersion without a schema), each
# message once, with how many times it came (once per resource and version).
check() {
    local label="$1" file="$2" out rc=0
    out="$("$venv/bin/kubernetes-validate" --strict "${kflags[@]}" "$file" 2>&1)" || rc=$?
    local bad
    bad="$(grep -v '^INFO ' <<<"$out" || true)"
    if [ "$rc" -ne 0 ] || [ -n "$bad" ] || [ -z "$out" ]; then
        echo "FAIL $label"
        if [ -n "$bad" ]; then
            sed -e 's/ against version [0-9.]*:/:/' -e 's/ for kubernetes version [0-9.]*$//' <<<"$bad" |
                sort | uniq -c | sed 's/^ *\([0-9]*\) /     [x\1] /'
        else
            echo "     (validator exit $rc, no resource checked)"
        fi
        failed=$((failed + 1))
    else
        local resources
        resources="$(sed -n 's/.* for resource \([^ ]*\) against .*/\1/p' <<<"$out" | sort -u | paste -sd ' ' -)"
        echo "ok   $label: $resources ($range)"
    fi
}

for f in "$dir"/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    check "$f" "$f"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rendered="$tmp/kustomize-build.yaml"
if command -v kubectl >/dev/null && kubectl kustomize "$dir" >"$rendered" 2>"$tmp/kustomize.err"; then
    check "$dir/kustomization.yaml (rendered by kubectl kustomize)" "$rendered"
elif command -v kustomize >/dev/null && kustomize build "$dir" >"$rendered" 2>"$tmp/kustomize.err"; then
    check "$dir/kustomization.yaml (rendered by kustomize build)" "$rendered"
elif command -v kubectl >/dev/null || command -v kustomize >/dev/null; then
    echo "FAIL $dir/kustomization.yaml: does not render"
    sed 's/^/     /' "$tmp/kustomize.err"
    failed=$((failed + 1))
else
    echo "skip $dir/kustomization.yaml: neither kubectl nor kustomize is installed, so it was not rendered"
fi

if ! "$venv/bin/python" - "$dir" <<'EOF'; then failed=$((failed + 1)); fi
import re, sys, yaml
from pathlib import Path

d = Path(sys.argv[1])
text = (d / "cameras.toml").read_text()
try:
    import tomllib
    manifest = tomllib.loads(text)
    names = [c.get("name") for c in manifest.get("camera", [])]
    pipeline = manifest.get("pipeline")
except ImportError:  # Python < 3.11: count the [[camera]] headers
    names = re.findall(r'(?m)^\s*\[\[\s*camera\s*\]\]', text)
    m = re.search(r'(?m)^\s*pipeline\s*=\s*"([^"]*)"', text)
    pipeline = m and m.group(1)

def find(file, kind, name):
    for doc in yaml.safe_load_all((d / file).read_text()):
        if doc and doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise SystemExit(f"FAIL {d}/{file}: no {kind} {name}")

counts = {
    "cameras.toml [[camera]] entries": len(names),
    "fit-job.yaml completions": find("fit-job.yaml", "Job", "vigil-fit")["spec"]["completions"],
    "score-statefulset.yaml replicas": find("score-statefulset.yaml", "StatefulSet", "vigil-score")["spec"]["replicas"],
}
problems = []
if len(set(counts.values())) != 1:
    problems.append("camera counts differ: " + ", ".join(f"{k} = {v}" for k, v in counts.items()))
if len(set(names)) != len(names):
    problems.append(f"camera names repeat: {names}")
generated = [f for g in yaml.safe_load((d / "kustomization.yaml").read_text()).get("configMapGenerator", [])
             if g.get("name") == "vigil-cameras" for f in g.get("files", [])]
if pipeline is None or pipeline.startswith("/"):
    pass  # a pipeline in the image (absolute path) or none: nothing to check here
elif pipeline not in generated:
    problems.append(f"cameras.toml names pipeline {pipeline!r}, which the vigil-cameras ConfigMap does not hold (files: {generated})")
if problems:
    print(f"FAIL {d}: camera count and ConfigMap")
    for p in problems:
        print(f"     {p}")
    sys.exit(1)
print(f"ok   {d}: {len(names)} cameras in cameras.toml, fit completions and score replicas; pipeline {pipeline!r} in the ConfigMap")
EOF

if [ "$failed" -ne 0 ]; then
    echo "$failed check(s) failed"
    exit 1
fi
echo "all Kubernetes manifests valid against the schemas of $range (validator: kubernetes-validate $validator_version)"
