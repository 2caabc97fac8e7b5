"""Faust patches: explicit, idempotent, and tied to the upstream source they change."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream import faust_patches


@pytest.mark.parametrize("patch", faust_patches.PATCHES, ids=lambda p: p.name)
def test_patched_upstream_function_is_the_one_the_patch_was_written_for(patch):
    """Fails when a Faust upgrade changes a function we patch: re-read the patch, then update the hash."""
    digest = _upstream_sha256(patch)  # from the module's file: the same before and after install()
    assert digest == patch.sha256, (
        f"faust {version('faust-streaming')} changed {patch.owner.__name__}.{patch.name} "
        f"(patches written for {faust_patches.FAUST_VERSION}): re-read stream/faust_patches.py"
    )


def _upstream_sha256(patch) -> str:
    import ast
    import hashlib
    import inspect

    module = inspect.getmodule(patch.owner)
    tree = ast.parse(inspect.getsource(module))
    lines = inspect.getsource(module).splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == patch.owner.__name__:
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == patch.name:
                    start = min([d.lineno for d in item.decorator_list] + [item.lineno]) - 1
                    return hashlib.sha256("".join(lines[start : item.end_lineno]).encode()).hexdigest()
    raise AssertionError(f"{patch.name} not found in {module.__name__}")


def test_importing_changes_nothing_and_install_applies_both_idempotently():
    before = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    assert faust_patches.install(20, direct_delivery=True) == {
        "fetch_wait": True, "direct_delivery": True, "empty_commit": True, "guarded_commit": True
    }
    first = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    assert getattr(first, "_kuntur_patched", False) or before is not first
    assert faust_patches.install(30, direct_delivery=True) == {
        "fetch_wait": True, "direct_delivery": True, "empty_commit": True, "guarded_commit": True
    }
    assert getattr(faust_consumer.Consumer._drain_messages, "_kuntur_patched", False)
    assert faust_patches._state["fetch_max_wait_ms"] == 30


def test_a_commit_with_no_assigned_partition_commits_nothing_instead_of_crashing():
    import asyncio

    faust_patches.install(20)
    calls = []

    class Thread:
        _commit = faust_aiokafka.AIOKafkaConsumerThread._commit

        def assignment(self):
            return {"tp-1"}

    async def original(self, offsets):
        calls.append(dict(offsets))
        return True

    faust_patches._state["originals"]["_commit"], saved = original, faust_patches._state["originals"]["_commit"]
    try:
        faust_patches._install_empty_commit()
        thread = Thread()
        thread._commit = faust_aiokafka.AIOKafkaConsumerThread._commit.__get__(thread)
        assert asyncio.run(thread._commit({"tp-0": 5})) is False  # revoked: nothing sent to aiokafka
        assert asyncio.run(thread._commit({"tp-0": 5, "tp-1": 7})) is True
        assert calls == [{"tp-0": 5, "tp-1": 7}]
    finally:
        faust_patches._state["originals"]["_commit"] = saved
        faust_patches._install_empty_commit()
