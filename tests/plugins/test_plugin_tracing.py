"""`IRGOV_TRACE_PLUGINS=1`: each load, registration and hook call is logged with its plugin and
duration, on the `irgov_policy.plugins.trace` logger; without it, nothing is."""

from __future__ import annotations

import logging
import re

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.events.bus import EventBus, MemorySink
from irgov_policy.events.envelope import new_event
from irgov_policy.plugins import get_plugin_manager

from .conftest import Install

PLUGIN = """
from irgov_policy.hookspecs import hookimpl

seen = []

@hookimpl
def irgov_register_cel_functions(register):
    register("traceMe", len)

@hookimpl
def irgov_on_event(event):
    seen.append(event.id)
"""


def test_tracing_logs_each_hook_call_with_its_plugin_and_duration(
        install_plugin: Install, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    install_plugin("traced", PLUGIN)
    monkeypatch.setenv("IRGOV_TRACE_PLUGINS", "1")
    caplog.set_level(logging.INFO, logger="irgov_policy.plugins.trace")
    manager = get_plugin_manager()
    lines = [r.getMessage() for r in caplog.records if r.name == "irgov_policy.plugins.trace"]
    assert any(re.fullmatch(r"plugin traced: loaded `irgov_test_traced_plugin` in \d+\.\d{3} ms", m) for m in lines)
    assert "plugin traced: registered cel function `traceMe`" in lines
    assert any(re.fullmatch(r"plugin traced: irgov_register_cel_functions took \d+\.\d{3} ms", m) for m in lines)
    assert any(re.fullmatch(r"plugin irgov_policy\.default_plugins\.sinks: irgov_register_event_sinks took "
                            r"\d+\.\d{3} ms", m) for m in lines)

    caplog.clear()
    event = new_event("ir.validated_pass", {"tenant_id": "t", "request_id": "r"}, tenant_id="t")
    with EventBus([MemorySink()]) as bus:
        bus.publish(event)
        assert bus.flush(10)
    assert manager.get_plugin("traced").seen == [event.id]
    calls = [r.getMessage() for r in caplog.records if r.name == "irgov_policy.plugins.trace"]
    assert any(re.fullmatch(r"plugin traced: irgov_on_event took \d+\.\d{3} ms", m) for m in calls), calls


def test_without_the_variable_nothing_is_traced(install_plugin: Install, caplog: pytest.LogCaptureFixture) -> None:
    install_plugin("quiet", PLUGIN)
    caplog.set_level(logging.INFO, logger="irgov_policy.plugins.trace")
    get_plugin_manager()
    assert [r for r in caplog.records if r.name == "irgov_policy.plugins.trace"] == []


def test_plugins_verbose_names_what_each_plugin_registered(install_plugin: Install) -> None:
    install_plugin("listed", PLUGIN)
    result = CliRunner().invoke(main, ["plugins", "-v"])
    assert result.exit_code == 0, result.output
    block = result.stdout.split("listed 0.1 ", 1)[1].splitlines()
    assert block[:3] == [" [irgov-test-listed, irgov_test_listed_plugin]",
                         "  hooks: irgov_on_event, irgov_register_cel_functions", "  cel functions: traceMe"]
