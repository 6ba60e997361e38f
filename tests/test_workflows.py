"""The CI and publishing workflows are valid YAML with the steps that matter."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"


def load(name):
    text = (WORKFLOWS / name).read_text()
    doc = yaml.safe_load(text)
    # YAML reads the key `on` as True: normalise it back.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def step_runs(job) -> list[str]:
    return [s.get("run", "") or s.get("uses", "") for s in job["steps"]]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_workflow_is_well_formed(name):
    doc = load(name)
    assert doc["name"] and doc["on"] and doc["jobs"]
    for job_name, job in doc["jobs"].items():
        assert "runs-on" in job, job_name
        assert job["steps"], job_name
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step), f"{job_name}: {step}"


def test_cpu_workflow_runs_the_readme_test_command():
    job = load("ci.yml")["jobs"]["test"]
    assert "make test" in step_runs(job)
    readme = (REPO / "README.md").read_text()
    assert "```bash\nmake test\n```" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_gpu_workflow_checks_the_gpu_before_running_the_full_profile():
    doc = load("publish.yml")
    build = doc["jobs"]["build"]
    assert "self-hosted" in build["runs-on"] and "gpu" in build["runs-on"]
    runs = step_runs(build)
    gpu_check = next(i for i, r in enumerate(runs) if "nvidia-smi" in r)
    full_run = next(i for i, r in enumerate(runs) if "make book PROFILE=full" in r)
    assert gpu_check < full_run
    assert any("list_physical_devices('GPU')" in r for r in runs[:full_run])


def test_gpu_workflow_uploads_reports_on_failure_and_publishes_pages():
    doc = load("publish.yml")
    steps = doc["jobs"]["build"]["steps"]
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert any(s.get("if") == "failure()" and "_build/reports/" in s["with"]["path"]
               for s in uploads)  # fmt: skip
    assert any(s.get("uses", "").startswith("actions/upload-pages-artifact") for s in steps)
    deploy = doc["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])
    assert doc["permissions"]["pages"] == "write"
