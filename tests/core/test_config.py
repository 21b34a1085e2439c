from __future__ import annotations

from pathlib import Path

import pytest

from irgov_policy.config import GovernanceConfig, load_config
from irgov_policy.errors import ConfigError


def test_embedded_defaults_need_no_server() -> None:
    config = load_config(environ={})
    assert config.approval_store.startswith("sqlite:///")
    assert config.outbox.startswith("sqlite:///")
    assert config.hash_algorithm == "sha256" and config.packs == ()


def test_file_then_environment_then_arguments(tmp_path: Path) -> None:
    path = tmp_path / "irgov.yaml"
    path.write_text("engine: celpy\nmax_steps: 50\nevent_sinks: ['log:']\n")
    config = load_config(path, environ={"IRGOV_MAX_STEPS": "70", "IRGOV_EVENT_SINKS": "log:,jsonl:///tmp/e.jsonl"})
    assert config.engine == "celpy"
    assert config.max_steps == 70
    assert config.event_sinks == ("log:", "jsonl:///tmp/e.jsonl")
    assert load_config(path, environ={}, max_steps=5).max_steps == 5


def test_toml_and_nested_section(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text('[irgov]\nhash_algorithm = "blake3"\nseparation_of_duties = false\n')
    config = load_config(path, environ={})
    assert config.hash_algorithm == "blake3" and config.separation_of_duties is False


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"IRGOV_MAX_STEPS": "0"}, "`max_steps` in the environment must be a positive integer"),
        ({"IRGOV_MAX_STEPS": "many"}, "must be a positive integer"),
        ({"IRGOV_SEPARATION_OF_DUTIES": "maybe"}, "must be true or false"),
        ({"IRGOV_APPROVAL_DEFAULT_TTL": "nan"}, "positive finite number"),
        ({"IRGOV_APPROVAL_MAX_TTL": "-1"}, "positive finite number"),
    ],
)
def test_bad_values_are_refused_with_their_origin(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ)


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "irgov.yaml"
    path.write_text("engin: celpy\n")
    with pytest.raises(ConfigError, match="unknown setting `engin`"):
        load_config(path, environ={})


def test_secrets_stay_out_of_repr() -> None:
    config = GovernanceConfig(approval_key="k1:c2VjcmV0", api_keys=("alice:approver:*:topsecret",))
    assert "c2VjcmV0" not in repr(config) and "topsecret" not in repr(config)
