"""The image recipe: hadolint-clean, and saying what the deployment relies on (no Docker
engine runs here, so the build itself is not exercised)."""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing(hadolint):
    done = subprocess.run(
        [hadolint, "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(done.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert done.returncode == 0


def test_multi_stage_slim_python_311():
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert [f.split(" AS ")[-1] for f in froms] == ["build", "golive", "runtime"]
    assert {f.split(" AS ")[0] for f in froms} == {"${PYTHON_IMAGE}"}
    args = dict(
        rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest
    )
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", args["PYTHON_IMAGE"])


def test_installs_the_project_pinned_by_constraints_without_extras():
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert re.search(r"pip install [^&]*-c constraints\.txt \.(\s|$)", runs)
    assert "[" not in runs.split("-c constraints.txt", 1)[1].split("&&")[0]


def test_runtime_contract():
    steps = instructions()
    runtime = steps[[i for i, (w, _) in enumerate(steps) if w == "FROM"][-1] :]
    words = dict(runtime)
    assert words["USER"].split(":")[0] not in ("root", "0")
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    assert "PYTHONUNBUFFERED=1" in env
    assert json.loads(words["ENTRYPOINT"]) == [
        "credit-assessment", "serve", "--host", "0.0.0.0", "--port", "8080"
    ]  # fmt: skip
    volumes = json.loads(words["VOLUME"])
    assert "/tmp" in volumes and "/var/lib/credit-assessment" in volumes
    labels = " ".join(rest for word, rest in runtime if word == "LABEL")
    for key, arg in (("version", "VERSION"), ("revision", "REVISION"), ("source", "SOURCE")):
        assert f'org.opencontainers.image.{key}="${{{arg}}}"' in labels


def stage(name: str) -> list[tuple[str, str]]:
    """The instructions of one stage, FROM included."""
    steps = instructions()
    starts = [i for i, (w, _) in enumerate(steps) if w == "FROM"] + [len(steps)]
    for begin, end in itertools.pairwise(starts):
        if steps[begin][1].endswith(f" AS {name}"):
            return steps[begin:end]
    raise AssertionError(f"no stage {name}")


def test_golive_target_carries_what_the_plan_runs():
    """deploy/k8s/golive's Job runs this target: golive plus curl and jq (the production plan's
    token command) and the PostgreSQL client of the cluster's major version (backup steps)."""
    golive = stage("golive")
    words = dict(golive)
    runs = " ".join(rest for word, rest in golive if word == "RUN")
    installs = re.findall(r"apt-get install -y --no-install-recommends ([^&]+)", runs)
    packages = " ".join(installs).split()
    assert {"curl", "jq", '"postgresql-client-${POSTGRES_MAJOR}"'} <= set(packages)
    args = dict(rest.split("=", 1) for word, rest in golive if word == "ARG" and "=" in rest)
    cluster = (REPO / "deploy/k8s/infra/postgres/cluster.yaml").read_text(encoding="utf-8")
    server_major = re.search(r"imageName: \S+:(\d+)\.", cluster)
    assert server_major and args["POSTGRES_MAJOR"] == server_major.group(1)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert words["USER"].split(":")[0] not in ("root", "0")
    assert "COPY" in words and "--from=build /opt/venv" in words["COPY"]
    assert json.loads(words["ENTRYPOINT"]) == ["golive"]
    assert "/var/lib/golive" in json.loads(words["VOLUME"])
    assert words["EXPOSE"] == "9464"
    job = (REPO / "deploy/k8s/golive/job.yaml").read_text(encoding="utf-8")
    assert "image: registry.example.com/credit-assessment-golive:" in job


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a parent folder counts."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        regex = fnmatch.translate(glob).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if any(re.fullmatch(regex, p) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_context_small_but_complete():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for heavy in (".git/HEAD", ".venv/bin/python", ".data/x", "tests/unit/x.py", "bench/x.py",
                  "src/golive/__pycache__/x.pyc", "deploy/k8s/base/deployment.yaml"):  # fmt: skip
        assert _ignored(heavy, patterns), heavy
    copied = ["pyproject.toml", "constraints.txt", "README.md", "src/golive/cli.py"]
    for needed in copied:
        assert not _ignored(needed, patterns), needed


def test_runtime_dependencies_are_pinned_in_constraints():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = {
        re.split(r"[=<>~!\[ ;]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    names = {
        re.split(r"[=<>~!\[ ;]", dep, maxsplit=1)[0].lower().replace("_", "-")
        for dep in project["dependencies"]
    }
    assert names - pinned == set()
