"""The provisioner adapters: safe command templates, deploymentId parsing, bounded waits, blocked verdicts."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from margo_conformance.errors import Blocked, UsageError
from margo_conformance.pki import Pki, SpiffeId
from margo_conformance.reference.wfm import AdminClient, BackgroundWfm, WfmConfig
from margo_conformance.wfm.provisioners import (
    CommandProvisioner,
    ManualProvisioner,
    ReferenceProvisioner,
    deployment_id_from,
)

ROOT = Path(__file__).resolve().parents[1]
CLIENT = SpiffeId.client("factory.example", "wfm-1", "c-1")
UUID = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"


def test_a_value_is_one_argument_whatever_it_contains(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    provisioner = CommandProvisioner({"deploy": "printf '%s|%s\\n' {device_id} " + UUID})
    hostile = f"edge 1; touch {marker}"
    deployment = provisioner.deploy(
        client=CLIENT, device_id=hostile, description=tmp_path / "x.yaml", parameters={}
    )
    assert deployment == UUID
    assert not marker.exists(), "a placeholder value was run as shell syntax"


def test_deploy_passes_the_parameters_as_a_json_file(tmp_path: Path) -> None:
    script = tmp_path / "show.py"
    script.write_text(
        "import json, sys\nprint(json.dumps({'deploymentId': json.load(open(sys.argv[1]))['port']}))\n",
        encoding="utf-8",
    )
    provisioner = CommandProvisioner({"deploy": f"python3 {script} {{parameters_file}}"})
    assert (
        provisioner.deploy(client=CLIENT, device_id="d", description=script, parameters={"port": "9090"})
        == "9090"
    )


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (f"created\n{UUID}\n", UUID),
        ('{"deploymentId": "d-7"}\n', "d-7"),
        (f"old {UUID[:-1]}0 then {UUID}", UUID),
    ],
)
def test_the_deployment_id_is_read_from_json_or_the_last_uuid(stdout: str, expected: str) -> None:
    assert deployment_id_from(stdout) == expected


def test_no_deployment_id_blocks() -> None:
    with pytest.raises(Blocked, match="no deploymentId"):
        deployment_id_from("done\n")


@pytest.mark.parametrize(
    ("templates", "match"),
    [
        ({}, "no 'accept_client' command"),
        ({"accept_client": "sh -c 'echo denied >&2; exit 3'"}, "exit 3.*denied"),
        ({"accept_client": "/no/such/vendorctl {spiffe_id}"}, "command not found"),
        ({"accept_client": "sleep 5", "timeout_s": 0.3}, "no answer within"),
    ],
    ids=["missing", "failing", "absent-binary", "hanging"],
)
def test_a_provisioner_that_cannot_do_it_blocks_with_evidence(templates: dict[str, Any], match: str) -> None:
    with pytest.raises(Blocked, match=match):
        CommandProvisioner(templates).accept_client(CLIENT)


def test_a_template_with_an_unknown_placeholder_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="bad template"):
        CommandProvisioner({"accept_client": "vendorctl {nope}"}).accept_client(CLIENT)


def test_manual_provisioning_without_a_terminal_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = builtins.open

    def no_tty(file: Any, *args: Any, **kwargs: Any) -> Any:
        if file == "/dev/tty":
            raise OSError("no terminal")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_tty)
    with pytest.raises(Blocked, match="operator at a terminal"):
        ManualProvisioner(timeout_s=1).accept_client(CLIENT)


def test_the_reference_provisioner_drives_the_admin_interface(tmp_path: Path) -> None:
    pki = Pki.init(tmp_path / "pki", trust_domain="factory.example", wfm_id="wfm-1")
    client = SpiffeId.client("factory.example", "wfm-1", "edge-1")
    description = ROOT / "fixtures" / "packages" / "vendor-a-compose" / "margo.yaml"
    with BackgroundWfm(WfmConfig(pki_dir=pki.directory, state_dir=tmp_path / "wfm")) as endpoints:
        assert endpoints.admin_url is not None
        provisioner = ReferenceProvisioner(endpoints.admin_url)
        admin = AdminClient(endpoints.admin_url)
        provisioner.accept_client(client)
        deployment_id = provisioner.deploy(
            client=client, device_id="dev", description=description, parameters={}
        )
        provisioner.update(deployment_id, description=description, parameters={"listenPort": 9090})
        (held,) = admin.state()["deployments"]
        assert (held["deploymentId"], held["client"]) == (deployment_id, str(client))
        assert held["parameters"]["listenPort"] == 9090  # the same client and device, new content
        provisioner.overload(status=503, retry_after=2)
        assert admin.state()["overload"] == {"status": 503, "retryAfter": 2, "remaining": 1}
        provisioner.undeploy(deployment_id)
        with pytest.raises(Blocked, match=f"HTTP 404: no deployment {deployment_id}"):
            provisioner.undeploy(deployment_id)
        with pytest.raises(Blocked, match="holds no deployment"):
            provisioner.update(deployment_id, description=description, parameters={})
    with pytest.raises(Blocked, match=f"cannot reach {endpoints.admin_url}"):
        provisioner.retire_client(client)
