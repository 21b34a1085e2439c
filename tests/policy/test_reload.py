"""Reloading the pack set: proved before it is put in force, last-known-good on failure, an
atomic swap, the watcher's debounce, and the `ir.packs_reloaded` event."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from irgov_policy.events import EventBus, ExtensionEventType, MemorySink, is_critical
from irgov_policy.events.payloads import payload_problems
from irgov_policy.policy.active import PackSetHolder
from irgov_policy.policy.candidate import CandidateError, prove_candidate
from irgov_policy.policy.evaluator import PolicyEngine
from irgov_policy.policy.watch import PackWatcher

ROOT = Path(__file__).resolve().parents[2]
DNS_IR = {"tenant_id": "t1", "request_id": "r1", "steps": [
    {"action": "dns.update_records", "provider": "dns.cloudflare", "resource": "dns:example.com",
     "params": {}, "idempotency_key": "k1"}]}


def _compose(packs: list) -> PolicyEngine:  # type: ignore[type-arg]
    return PolicyEngine.from_packs(packs, budget_ms=60_000)


def _holder(pack_dir: Path, bus: EventBus | None = None) -> PackSetHolder:
    def prove() -> PolicyEngine:
        return prove_candidate([str(pack_dir)], _compose)
    return PackSetHolder(prove(), prove, bus=bus)


def _new_version(pack_dir: Path) -> None:
    """Bump the pack's version: a change of the set in force that its policy tests accept."""
    pack = pack_dir / "baseline.irgov.yaml"
    text = pack.read_text("utf-8")
    version = re.search(r'version: "1\.0\.(\d+)"', text)
    assert version is not None
    pack.write_text(text.replace(version.group(0), f'version: "1.0.{int(version.group(1)) + 1}"'), "utf-8")


def test_an_unchanged_reload_changes_nothing(pack_dir: Path) -> None:
    sink = MemorySink()
    holder = _holder(pack_dir, EventBus([sink]))
    before = holder.active
    result = holder.reload(by="alice")
    assert result.ok and not result.changed
    assert holder.active is before
    assert sink.events == []


def test_a_proved_change_is_swapped_in_and_recorded(pack_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = MemorySink()
    holder = _holder(pack_dir, EventBus([sink]))
    old = holder.active
    _new_version(pack_dir)
    with caplog.at_level("INFO", logger="irgov_policy.audit.packs"):
        result = holder.reload(by="alice", trigger="api")
    assert result.ok and result.changed, result
    assert holder.active.digest == result.new_digest != old.digest
    assert holder.engine is not old.engine
    [event] = sink.events
    assert event.type == ExtensionEventType.PACKS_RELOADED and is_critical(event.type)
    assert payload_problems(event.type, event.payload) == []
    assert event.payload["old_digest"] == old.digest and event.payload["reloaded_by"] == "alice"
    assert event.payload["trigger"] == "api"
    [line] = [r.getMessage() for r in caplog.records if r.name == "irgov_policy.audit.packs"]
    assert line == f"rule pack set changed by alice (api): {old.digest} -> {result.new_digest}"


@pytest.mark.parametrize(("edit", "stage"), [
    (lambda text: text.replace("apiVersion: irgov.dev/v1", "apiVersion: irgov.dev/v0"), "load: "),
    (lambda text: text + "\nrules: [\n", "load: "),
])
def test_a_broken_edit_keeps_the_last_good_set(pack_dir: Path, edit, stage: str) -> None:  # type: ignore[no-untyped-def]
    holder = _holder(pack_dir)
    good = holder.active
    pack = pack_dir / "baseline.irgov.yaml"
    pack.write_text(edit(pack.read_text("utf-8")), "utf-8")
    result = holder.reload(by="watch", trigger="watch")
    assert not result.ok and not result.changed
    assert holder.active is good
    assert result.error is not None and result.error.startswith(stage) and "\n" not in result.error
    assert "baseline.irgov.yaml" in result.error
    status = holder.status()
    assert status["digest"] == good.digest and status["last_reload_error"]["error"] == result.error
    assert holder.engine.evaluate(DNS_IR).status == good.engine.evaluate(DNS_IR).status


def test_a_change_that_fails_its_policy_tests_is_refused(pack_dir: Path) -> None:
    holder = _holder(pack_dir)
    good = holder.active
    pack = pack_dir / "baseline.irgov.yaml"
    # Dropping production from the tokens the baseline escalates on breaks the pack's own tests.
    text = pack.read_text("utf-8")
    assert "production_markers: [production, prod, prd, live]" in text
    pack.write_text(text.replace("production_markers: [production, prod, prd, live]", "production_markers: [nothing]"),
                    "utf-8")
    result = holder.reload(by="ops")
    assert not result.ok
    assert result.error is not None and result.error.startswith("policy tests: case `"), result.error
    assert holder.active is good
    # Fixing the pack clears the error.
    pack.write_text(text, "utf-8")
    assert holder.reload(by="ops").ok
    assert holder.status()["last_reload_error"] is None


def test_a_lint_error_is_refused(pack_dir: Path) -> None:
    (pack_dir / "extra.irgov.yaml").write_text(
        "apiVersion: irgov.dev/v1\nkind: RulePack\nmetadata: {name: extra, version: '1'}\n"
        "rules:\n- id: never\n  when: step.action == \"no.such_action\"\n  tier: 3\n  reason: x\n", "utf-8")
    with pytest.raises(CandidateError, match=r"^lint: .*extra.irgov.yaml:6:"):
        prove_candidate([str(pack_dir)], _compose)


def test_decisions_in_flight_keep_their_set(pack_dir: Path) -> None:
    """A reader takes the engine once; a swap during its decision does not change what it uses."""
    holder = _holder(pack_dir)
    taken = holder.engine
    _new_version(pack_dir)
    assert holder.reload(by="t").changed
    assert taken is not holder.engine
    assert taken.evaluate(DNS_IR).to_dict()["packs"] != holder.engine.evaluate(DNS_IR).to_dict()["packs"]


def test_concurrent_reloads_and_decisions(pack_dir: Path) -> None:
    holder = _holder(pack_dir)
    stop = threading.Event()
    errors: list[BaseException] = []

    def decide() -> None:
        try:
            while not stop.is_set():
                assert holder.engine.evaluate(DNS_IR).status in ("PASS", "ESCALATE")
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=decide) for _ in range(2)]
    for r in readers:
        r.start()
    results = []
    for _ in range(3):
        _new_version(pack_dir)
        results.append(holder.reload(by="t"))
    stop.set()
    for r in readers:
        r.join()
    assert errors == [] and all(r.ok and r.changed for r in results)


def test_the_watcher_reports_a_debounced_batch(tmp_path: Path, pack_dir: Path) -> None:
    batches: list[set[str]] = []
    seen = threading.Event()

    def record(paths: set[str]) -> None:
        batches.append(paths)
        seen.set()

    watcher = PackWatcher([pack_dir], record, debounce_ms=200).start()
    try:
        time.sleep(0.3)  # let the watch start before writing
        for i in range(5):
            (pack_dir / "baseline.irgov.yaml").write_text(f"# {i}\n", "utf-8")
        (pack_dir / ".hidden.swp").write_text("x", "utf-8")
        (pack_dir / ".irgov").mkdir()
        (pack_dir / ".irgov" / "outbox.db").write_text("x", "utf-8")
        assert seen.wait(10), "no change reported"
        time.sleep(0.5)
    finally:
        watcher.stop()
    assert len(batches) == 1
    assert {Path(p).name for p in batches[0]} == {"baseline.irgov.yaml"}


def test_the_watcher_follows_a_file_replaced_by_rename(tmp_path: Path, pack_dir: Path) -> None:
    seen = threading.Event()
    target = pack_dir / "baseline.irgov.yaml"
    watcher = PackWatcher([target], lambda paths: seen.set(), debounce_ms=100).start()
    try:
        time.sleep(0.3)
        (pack_dir / "other.txt").write_text("unrelated", "utf-8")
        assert not seen.wait(1), "a change to another file was reported"
        replacement = pack_dir / "baseline.irgov.yaml.new"
        replacement.write_text(target.read_text("utf-8"), "utf-8")
        replacement.replace(target)
        assert seen.wait(10)
    finally:
        watcher.stop()
